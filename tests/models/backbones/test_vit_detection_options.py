"""The core ViT's detection options (ViTDet and detrex's EVA ViTDet), without detectron2:
residual conv blocks, no absolute position embedding, query/value-only biases, rope in windowed
blocks (the window's tables) and token-index rope positions, EVA's cubic resize of relative
position tables. Parity with detectron2/detrex's classes is in tests/detectron2/."""
import pytest
import torch

from mmbackbones.models.backbones.vit import VisionTransformer
from mmbackbones.models.layers.rel_pos import beit_resize
from mmbackbones.models.layers.rope import RotaryEmbedding2d

T3 = dict(embed_dims=48, num_layers=3, num_heads=3, feedforward_channels=192)


def _vit(**kwargs):
    kwargs = {**dict(arch=T3, img_size=32, with_cls_token=False, final_norm=False,
                     out_type='featmap'), **kwargs}
    return VisionTransformer(**kwargs).eval()


def _perturbed(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {k: v + 0.05 * torch.randn(v.shape, generator=gen)
            for k, v in model.state_dict().items()}


def test_residual_blocks_start_as_identity_and_then_change_the_outputs():
    plain = _vit()
    res = _vit(residual_block_indexes=[0, 2])
    keys = {k for k in res.state_dict() if '.residual.' in k}
    assert keys == {f'layers.{i}.residual.{m}.{p}' for i in (0, 2)
                    for m, p in [('conv1', 'weight'), ('conv2', 'weight'), ('conv3', 'weight'),
                                 ('norm1', 'weight'), ('norm1', 'bias'), ('norm2', 'weight'),
                                 ('norm2', 'bias'), ('norm3', 'weight'), ('norm3', 'bias')]}
    assert res.layers[0].residual.conv1.weight.shape == (24, 48, 1, 1)
    assert res.layers[0].residual.conv2.weight.shape == (24, 24, 3, 3)
    res.init_weights()
    assert not res.layers[2].residual.norm3.weight.any()  # zero: the identity at start
    res.load_state_dict({**res.state_dict(), **plain.state_dict()})
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(res(x)[0], plain(x)[0], rtol=1e-5, atol=1e-5)
        res.load_state_dict(_perturbed(res))
        assert not torch.allclose(res(x)[0], plain(x)[0], atol=1e-3)
    # lr decay: the residual blocks at the last depth (detectron2's get_vit_lr_decay_rate)
    assert res.get_layer_depth('layers.0.residual.conv1.weight') == (4, 5)
    assert res.get_layer_depth('layers.0.attn.qkv.weight') == (1, 5)
    out = res(x)[0]
    out.sum().backward()
    assert all(p.grad is not None for p in res.parameters())


def test_no_pos_embed_and_qv_biases():
    model = _vit(with_pos_embed=False, qkv_bias='qv', frozen_stages=1)
    assert model.pos_embed is None and 'pos_embed' not in model.state_dict()
    attn = model.layers[0].attn
    assert attn.qkv.bias is None and attn.q_bias.shape == attn.v_bias.shape == (48, )
    assert model(torch.randn(1, 3, 48, 64))[0].shape == (1, 48, 3, 4)
    # query/value biases equal a fused bias [q; 0; v]
    fused = _vit(with_pos_embed=False)
    state = _perturbed(model)
    fused_state = {k: v for k, v in state.items() if not k.endswith(('q_bias', 'v_bias'))}
    for i in range(3):
        q, v = state[f'layers.{i}.attn.q_bias'], state[f'layers.{i}.attn.v_bias']
        fused_state[f'layers.{i}.attn.qkv.bias'] = torch.cat((q, torch.zeros_like(q), v))
    model.load_state_dict(state)
    fused.load_state_dict(fused_state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], fused(x)[0], rtol=1e-5, atol=1e-5)


def test_rope_in_windows_uses_the_windows_tables():
    rope = dict(ref_grid=(16, 16))
    glob = _vit(rope=rope)
    # one window covering the 4x4 map: the window's tables are the map's tables
    windowed = _vit(rope=rope, window_size=4, window_block_indexes=[0, 1, 2])
    windowed.load_state_dict(glob.state_dict())
    glob.load_state_dict(_perturbed(glob))
    windowed.load_state_dict(glob.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(windowed(x)[0], glob(x)[0], rtol=1e-5, atol=1e-5)
        # 2x2 windows: each window rotated by its own (2x2 grid) positions, not the map's
        small = _vit(rope=rope, window_size=2, window_block_indexes=[0, 1, 2])
        small.load_state_dict(glob.state_dict())
        assert not torch.allclose(small(x)[0], glob(x)[0], atol=1e-4)
        assert small(torch.randn(1, 3, 80, 48))[0].shape == (1, 48, 5, 3)  # padded windows


def test_rope_token_index_positions():
    indices = RotaryEmbedding2d(16, ref_grid=(99, 99), interpolate=False)
    spanning = RotaryEmbedding2d(16, ref_grid=(5, 3))
    for a, b in zip(indices((5, 3)), spanning((5, 3))):  # ref = the grid: the same positions
        torch.testing.assert_close(a, b)
    assert not torch.allclose(indices((4, 4))[0], spanning((4, 4))[0])
    with pytest.raises(TypeError, match='rope interpolate'):
        _vit(rope=dict(interpolate='yes'))


def test_beit_resize_is_a_not_a_knot_cubic_spline():
    # a not-a-knot cubic spline reproduces a cubic exactly, inside and outside the knots
    src, dst = 9, 15
    ratio, cur, dis = 1.0903078, 1.0, []
    for i in range(src // 2):
        dis.append(cur)
        cur += ratio ** (i + 1)
    x = torch.tensor([-d for d in reversed(dis)] + [0.] + dis, dtype=torch.float64)

    def cubic(t):
        return torch.stack([0.3 * t ** 3 - t ** 2 + 2 * t - 1, -0.1 * t ** 3 + t], dim=1)

    got = beit_resize(cubic(x).float(), dst)
    t = torch.arange(-(dst // 2), dst // 2 + 1, dtype=torch.float64)
    torch.testing.assert_close(got.double(), cubic(t), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match='at least 5 rows'):
        beit_resize(torch.zeros(3, 2), 7)
    # a model resizing its global tables that way (EVA-01's interp_type='beit')
    model = _vit(use_rel_pos=True, rel_pos_zero_init=False, rel_pos_size=4,
                 rel_pos_resize='beit')
    linear = _vit(use_rel_pos=True, rel_pos_zero_init=False, rel_pos_size=4)
    linear.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 64)  # the tables' grid: no resize, the same outputs
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], linear(x)[0])
        x = torch.randn(1, 3, 96, 112)
        assert not torch.allclose(model(x)[0], linear(x)[0], atol=1e-5)


@pytest.mark.parametrize('kwargs,pattern', [
    (dict(residual_block_indexes=[3]), 'residual_block_indexes'),
    (dict(residual_block_indexes=3), 'residual_block_indexes'),
    (dict(residual_block_indexes=[0], with_cls_token=True), 'token map only'),
    (dict(rel_pos_resize='cubic'), 'rel_pos_resize'),
    (dict(qkv_bias='kv'), 'qkv_bias'),
    (dict(with_pos_embed=1), 'with_pos_embed'),
])
def test_bad_detection_arguments(kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        _vit(**kwargs)


def test_detrex_wrappers_are_initialised_at_construction_as_detrex():
    """mmbackbones.detrex's EVA classes (detectron2 not needed: the contract falls back to
    nn.Module) initialise as detrex's: q/v biases zero, layer scales one, linears trunc-normal
    0.02, the residual block's last norm zero, a frozen patch embedding stays frozen."""
    from mmbackbones.detrex import EVA02_ViT, EVAViT
    torch.manual_seed(0)
    eva = EVAViT(img_size=64, embed_dim=64, depth=2, num_heads=2, window_size=2,
                 window_block_indexes=[0], residual_block_indexes=[1], beit_like_gamma=True,
                 freeze_patch_embed=True)
    layer = eva.layers[1]
    assert not layer.attn.q_bias.any() and not layer.attn.v_bias.any()
    assert torch.equal(layer.attn.gamma1.weight, torch.ones(64))
    assert 0.015 < float(layer.ffn.layers[0][0].weight.std()) < 0.025
    assert not layer.residual.norm3.weight.any()
    assert not any(p.requires_grad for p in eva.patch_embed.parameters())
    eva02 = EVA02_ViT(img_size=64, embed_dim=64, depth=2, num_heads=2)
    assert not eva02.layers[0].attn.q_bias.any()
    assert torch.equal(eva02.layers[0].ffn.norm.weight, torch.ones(eva02.layers[0].ffn.norm.
                                                                   weight.shape))
    assert 0.015 < float(eva02.layers[0].ffn.w12.weight.std()) < 0.025


def test_rope_tables_cached_under_inference_mode_serve_training_after():
    model = _vit(rope=dict(ref_grid=(16, 16)), window_size=2, window_block_indexes=[1])
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        expected = model(x)[0].clone()
    model.train()
    out = model(x)[0]  # the same grids: the cached tables were inference tensors
    out.sum().backward()
    torch.testing.assert_close(out.detach(), expected)
