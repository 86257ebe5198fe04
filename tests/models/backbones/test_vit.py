"""VisionTransformer: mmpretrain/timm parity, any input size, out types, freezing, loading."""
import glob
import os
import warnings

import pytest
import torch
import torch.nn.functional as F

from mmbackbones.builder import build_backbone, build_backbone_from_config
from mmbackbones.checkpoint.converters.timm_vit import (convert_timm_vit, is_timm_vit,
                                                        is_timm_vit_state_dict)
from mmbackbones.models.backbones.vit import VisionTransformer, arch_settings
from mmbackbones.models.layers import MultiheadSelfAttention, PatchEmbed, resize_pos_embed
from tests.parity import assert_mmpretrain_parity

# a 3-layer, 32-d ViT: fast enough for every behaviour test
TINY = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


def _perturb(state_dict, scale=0.02):
    """Random values everywhere (cls_token and pos_embed start at zero)."""
    return {k: v + scale * torch.randn_like(v) for k, v in state_dict.items()}


def _tiny(**kwargs):
    kwargs.setdefault('arch', TINY)
    kwargs.setdefault('img_size', 32)
    return VisionTransformer(**kwargs)


# ------------------------------------------------------------------------------------------------
# mmpretrain parity
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def mmpretrain_vit():
    pytest.importorskip('mmpretrain', reason='mmpretrain parity needs mmpretrain installed')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from mmpretrain.models.backbones.vision_transformer import VisionTransformer as Theirs
    return Theirs


def test_arch_table_matches_mmpretrain(mmpretrain_vit):
    for name, dims in mmpretrain_vit.arch_zoo.items():
        assert arch_settings[name] == dims, name
        assert VisionTransformer(arch=name.upper(), out_indices=0,
                                 init_cfg=dict(type='Pretrained', checkpoint='x')).embed_dims \
            == dims['embed_dims']


PARITY_CASES = [
    dict(arch='deit-tiny', out_type='cls_token'),
    dict(arch='deit-tiny', out_type='featmap', out_indices=[3, 7, 11]),
    dict(arch=TINY, out_type='avg_featmap', layer_scale_init_value=0.1, pre_norm=True),
    dict(arch=TINY, out_type='raw', with_cls_token=False, final_norm=False,
         layer_cfgs=dict(ffn_type='swiglu_fused'), layer_scale_init_value=1e-5),
    dict(arch=TINY, out_type='featmap', qkv_bias=False, patch_size=8,
         layer_cfgs=dict(act_cfg=dict(type='QuickGELU'))),
]


@pytest.mark.parametrize('kwargs', PARITY_CASES)
def test_mmpretrain_parity_through_pretrained_init(kwargs, mmpretrain_vit, tmp_path):
    theirs_kwargs = dict(kwargs)
    if 'layer_cfgs' in kwargs and 'act_cfg' in kwargs['layer_cfgs']:
        theirs_kwargs['layer_cfgs'] = dict(act_cfg=dict(type='mmpretrain.QuickGELU'))
    theirs = mmpretrain_vit(img_size=32, **theirs_kwargs)
    # the last two sizes: padding and pos_embed resizing
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: VisionTransformer(img_size=32, **kwargs, init_cfg=init_cfg),
        tmp_path, [(32, 32), (40, 56), (97, 97)], key_order=False,
        randomize=lambda m: m.load_state_dict(_perturb(m.state_dict())))


# ------------------------------------------------------------------------------------------------
# timm parity (conversion)
# ------------------------------------------------------------------------------------------------
TIMM_CASES = [
    (dict(), dict(out_type='raw')),
    (dict(init_values=0.1, no_embed_class=True, pre_norm=True, global_pool='avg'),
     dict(out_type='avg_featmap', final_norm=False, pre_norm=True, layer_scale_init_value=0.1)),
]


@pytest.mark.parametrize('timm_kwargs,our_kwargs', TIMM_CASES)
def test_timm_parity_through_converter(timm_kwargs, our_kwargs):
    timm = pytest.importorskip('timm', reason='timm parity needs timm')
    theirs = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=64,
                               **timm_kwargs).eval()
    theirs.load_state_dict(_perturb(theirs.state_dict()))
    state_dict = theirs.state_dict()
    assert is_timm_vit(state_dict) and is_timm_vit_state_dict(state_dict)
    converted = convert_timm_vit(state_dict)
    assert not any(k.startswith('head.') for k in converted)

    ours = VisionTransformer(arch='deit-tiny', img_size=64, **our_kwargs).eval()
    result = ours.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = theirs.forward_features(x)
        if our_kwargs['out_type'] == 'avg_featmap':
            expected = theirs.forward_head(expected, pre_logits=True)
        got = ours(x)[0]
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_timm_detector_refuses_other_layouts():
    ours = _tiny()
    assert not is_timm_vit(ours.state_dict())
    assert not is_timm_vit({'conv1.weight': torch.zeros(1),
                            'layer1.0.conv1.weight': torch.zeros(1)})


# ------------------------------------------------------------------------------------------------
# input sizes, out types, metadata
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('size', [(200, 328), (97, 97), (32, 32), (17, 5)])
def test_any_input_size(size):
    model = _tiny(out_type='featmap', out_indices=(0, 2)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    grid = (-(-size[0] // 16), -(-size[1] // 16))  # ceil: sides padded to a multiple of 16
    assert [tuple(o.shape) for o in outs] == [(1, 32, *grid)] * 2
    assert all(torch.isfinite(o).all() for o in outs)


def test_padding_is_bottom_right_zeros():
    model = _tiny(out_type='raw').eval()
    x = torch.randn(1, 3, 97, 97)
    padded = F.pad(x, (0, 15, 0, 15))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], model(padded)[0])


def test_out_types_shapes_and_metadata():
    x = torch.randn(2, 3, 48, 64)  # 3x4 grid
    expected = {'raw': (2, 13, 32), 'cls_token': (2, 32), 'featmap': (2, 32, 3, 4),
                'avg_featmap': (2, 32)}
    for out_type, shape in expected.items():
        model = _tiny(out_type=out_type, out_indices=(2, 0)).eval()
        assert model.out_channels == (32, 32)
        stride = None if out_type in ('cls_token', 'avg_featmap') else 16
        assert model.out_strides == (stride, stride)
        assert model.out_names == ('stage3', 'stage1')
        assert model.size_divisibility == 0
        with torch.no_grad():
            outs = model(x)
        assert [tuple(o.shape) for o in outs] == [shape, shape]
    raw = _tiny(out_type='raw', with_cls_token=False).eval()
    assert tuple(raw(x)[0].shape) == (2, 12, 32)


def test_outputs_follow_out_indices_order_and_final_norm():
    model = _tiny(out_type='raw', out_indices=(2, 0)).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        last, first = model(x)
        tokens, _ = model.patch_embed(x)
        tokens = torch.cat((model.cls_token.expand(1, -1, -1), tokens), 1) + model.pos_embed
        after0 = model.layers[0](tokens)
        final = model.ln1(model.layers[2](model.layers[1](after0)))
    torch.testing.assert_close(first, after0)
    torch.testing.assert_close(last, final)


def test_featmap_equals_raw_patch_tokens():
    model = _tiny(out_type='featmap').eval()
    raw_model = _tiny(out_type='raw').eval()
    raw_model.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        fmap, raw = model(x)[0], raw_model(x)[0]
    torch.testing.assert_close(fmap.flatten(2).transpose(1, 2), raw[:, 1:])


def test_only_needed_layers_are_built_and_all_params_get_gradients():
    model = _tiny(arch=dict(TINY, num_layers=6), out_indices=(1, 3), out_type='featmap')
    assert len(model.layers) == 4
    assert model.ln1 is None  # the final norm follows layer 5, which is not built
    assert not any(k.startswith(('layers.4', 'layers.5', 'ln1')) for k in model.state_dict())
    full = _tiny(arch=dict(TINY, num_layers=6), out_indices=-1)
    assert len(full.layers) == 6 and full.ln1 is not None
    model.train()
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


def test_avg_featmap_without_cls_token():
    model = _tiny(out_type='avg_featmap', with_cls_token=False).eval()
    assert model.cls_token is None and model.pos_embed.shape == (1, 4, 32)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 40, 40))[0]
    assert out.shape == (2, 32)


# ------------------------------------------------------------------------------------------------
# freezing, training options
# ------------------------------------------------------------------------------------------------
def test_frozen_stages():
    model = _tiny(frozen_stages=1, drop_rate=0.1)
    model.train()
    stem = [model.cls_token, model.pos_embed, *model.patch_embed.parameters()]
    assert not any(p.requires_grad for p in stem)
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert all(p.requires_grad for p in model.ln1.parameters())
    assert not model.layers[0].training and model.layers[1].training
    assert not model.drop_after_pos.training

    stem_only = _tiny(frozen_stages=0)
    assert not stem_only.pos_embed.requires_grad
    assert all(p.requires_grad for p in stem_only.layers[0].parameters())

    everything = _tiny(frozen_stages=3, out_type='avg_featmap')
    assert not any(p.requires_grad for p in everything.parameters())

    nothing = _tiny(frozen_stages=-1)
    assert all(p.requires_grad for p in nothing.parameters())


def test_frozen_stages_with_pre_norm_freezes_it():
    model = _tiny(frozen_stages=0, pre_norm=True)
    assert not any(p.requires_grad for p in model.pre_norm.parameters())
    assert model.patch_embed.projection.bias is None  # CLIP style: no patch bias


def test_with_cp_gives_same_gradients():
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = _tiny(with_cp=with_cp, out_type='avg_featmap')
        model.train()
        model(x)[0].sum().backward()
        grads.append(model.layers[0].attn.qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_drop_path_is_active_only_in_training():
    model = _tiny(drop_path_rate=0.5, out_type='raw')
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], model(x)[0])
        model.train()
        assert not torch.allclose(model(x)[0], model(x)[0])


# ------------------------------------------------------------------------------------------------
# loading: pos_embed resizing, deferred init
# ------------------------------------------------------------------------------------------------
def test_pos_embed_resized_on_load_from_another_grid():
    small = _tiny(img_size=32)
    small.load_state_dict(_perturb(small.state_dict()))
    big = _tiny(img_size=64)
    big.load_state_dict(small.state_dict())
    expected = resize_pos_embed(small.pos_embed.detach(), (2, 2), (4, 4), 'bicubic', 1)
    torch.testing.assert_close(big.pos_embed.detach(), expected)
    torch.testing.assert_close(big.cls_token, small.cls_token)
    # the small model resizes at forward exactly as the big one did on load
    small.eval(), big.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(small(x)[0], big(x)[0])


def test_pos_embed_load_non_square_grid_and_cls_token_handling():
    src = _tiny(img_size=(32, 64), out_type='raw')  # 2x4 grid
    src.load_state_dict(_perturb(src.state_dict()))
    dst = _tiny(img_size=(64, 128), out_type='raw')  # 4x8 grid
    dst.load_state_dict(src.state_dict())
    expected = resize_pos_embed(src.pos_embed.detach(), (2, 4), (4, 8))
    torch.testing.assert_close(dst.pos_embed.detach(), expected)
    # a checkpoint with a cls entry loads into a model without a cls token (entry dropped)
    no_cls = _tiny(img_size=(32, 64), out_type='raw', with_cls_token=False)
    sd = {k: v for k, v in src.state_dict().items() if k != 'cls_token'}
    no_cls.load_state_dict(sd)
    torch.testing.assert_close(no_cls.pos_embed.detach(), src.pos_embed.detach()[:, 1:])


def test_pos_embed_resized_through_pretrained_init(tmp_path):
    src = _tiny(img_size=32)
    src.load_state_dict(_perturb(src.state_dict()))
    path = str(tmp_path / 'vit.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()}}, path)
    dst = _tiny(img_size=48, init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone'))
    dst.init_weights()
    assert dst.pos_embed.shape == (1, 10, 32)
    expected = resize_pos_embed(src.pos_embed.detach(), (2, 2), (3, 3))
    torch.testing.assert_close(dst.pos_embed.detach(), expected)
    torch.testing.assert_close(dst.layers[2].attn.qkv.weight, src.layers[2].attn.qkv.weight)


def test_deferred_init_forward_guard_and_missing_keys(tmp_path):
    src = _tiny()
    src.load_state_dict(_perturb(src.state_dict()))
    partial = {f'backbone.{k}': v for k, v in src.state_dict().items() if not k.startswith('ln1')}
    path = str(tmp_path / 'partial.pth')
    torch.save(partial, path)
    # a partial checkpoint loads only with the explicit opt-out (refused by default)
    model = _tiny(init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone',
                                strict=False))
    with pytest.raises(RuntimeError, match='init_weights'):
        model(torch.randn(1, 3, 32, 32))
    model.init_weights()
    # the missing final norm got the default init (ones/zeros), the rest the checkpoint's values
    torch.testing.assert_close(model.ln1.weight.detach(), torch.ones(32))
    torch.testing.assert_close(model.ln1.bias.detach(), torch.zeros(32))
    torch.testing.assert_close(model.layers[1].ffn.layers[1].weight,
                               src.layers[1].ffn.layers[1].weight)
    assert torch.isfinite(model(torch.randn(1, 3, 32, 32))[0]).all()


def test_default_init_weights():
    model = _tiny()
    model.init_weights()
    assert model.pos_embed.abs().sum() > 0
    assert model.layers[0].attn.qkv.weight.std() < 0.03
    assert torch.count_nonzero(model.layers[0].attn.qkv.bias) == 0


# ------------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,exc,pattern', [
    (dict(arch='gigantic'), ValueError, r"arch 'gigantic'.*deit-tiny"),
    (dict(arch=dict(embed_dims=32, num_layers=2)), ValueError, 'missing keys'),
    (dict(arch=dict(TINY, num_heads=5)), ValueError, 'divisible'),
    (dict(arch=TINY, out_type='cls_token', with_cls_token=False), ValueError,
     "out_type='cls_token' needs with_cls_token=True"),
    (dict(arch=TINY, out_type='tokens'), ValueError, 'out_type must be one of'),
    (dict(arch=TINY, out_indices=3), ValueError, 'out_indices'),
    (dict(arch=TINY, out_indices=(0, -3)), ValueError, 'out_indices'),
    (dict(arch=TINY, frozen_stages=4), ValueError, 'frozen_stages'),
    (dict(arch=TINY, drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(arch=TINY, interpolate_mode='cubic'), ValueError, 'interpolate_mode'),
    (dict(arch=TINY, img_size=0), ValueError, 'img_size'),
    (dict(arch=TINY, patch_size=(16, 16, 3)), ValueError, 'patch_size'),
    (dict(arch=TINY, layer_cfgs=dict(heads=2)), ValueError, 'layer_cfgs.*unknown keys'),
    (dict(arch=TINY, layer_cfgs=[{}]), ValueError, 'list of 3 dicts'),
    (dict(arch=TINY, layer_cfgs=dict(ffn_type='moe')), ValueError, 'ffn_type'),
    (dict(arch=TINY, patch_cfg=dict(stride=8)), ValueError, 'patch_cfg.*unknown keys'),
    (dict(arch=TINY, layer_scale_init_value=-1.), ValueError, 'layer_scale_init_value'),
    (dict(arch=TINY, norm_cfg='LN'), TypeError, 'norm_cfg'),
    (dict(arch=TINY, qkv_bias='yes'), TypeError, 'qkv_bias'),
])
def test_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        VisionTransformer(**kwargs)


def test_wrong_input_channels():
    with pytest.raises(ValueError, match='in_channels=3'):
        _tiny()(torch.randn(1, 1, 32, 32))


def test_registry_names_and_configs():
    a = build_backbone(dict(type='ViT', arch=TINY, img_size=32))
    b = build_backbone(dict(type='mmcls.VisionTransformer', arch='deit-tiny', out_indices=0))
    assert type(a) is VisionTransformer and type(b) is VisionTransformer
    configs = sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                            'configs', 'vit', '*.py')))
    assert len(configs) >= 8
    names = {os.path.basename(c) for c in configs}
    assert 'vit-base-p16_224.py' in names
    for path in configs:
        # build light: only the first layer (the configs' own arch/img_size/out_type are checked)
        model = build_backbone_from_config(path, cfg_options={'model.backbone.out_indices': 0})
        assert isinstance(model, VisionTransformer)
    dense = build_backbone_from_config(
        os.path.join(os.path.dirname(configs[0]), 'vit-base-p16_512_dense-featmap.py'))
    assert dense.out_strides == (16,) * 4 and dense.out_channels == (768,) * 4
    assert dense.out_type == 'featmap'


# ------------------------------------------------------------------------------------------------
# layers
# ------------------------------------------------------------------------------------------------
def test_resize_pos_embed():
    pos = torch.randn(1, 1 + 6, 8)
    assert resize_pos_embed(pos, (2, 3), (2, 3)) is pos
    out = resize_pos_embed(pos, (2, 3), (4, 5), num_extra_tokens=1)
    assert out.shape == (1, 21, 8)
    torch.testing.assert_close(out[:, :1], pos[:, :1])
    grid = resize_pos_embed(torch.randn(1, 16, 8), None, (2, 2), mode='bilinear',
                            num_extra_tokens=0)
    assert grid.shape == (1, 4, 8)
    # a constant embedding stays constant under interpolation
    const = torch.ones(1, 9, 4)
    torch.testing.assert_close(resize_pos_embed(const, (3, 3), (5, 7), num_extra_tokens=0),
                               torch.ones(1, 35, 4))
    with pytest.raises(ValueError, match='not 1 extra tokens'):
        resize_pos_embed(pos, (3, 3), (4, 4))
    with pytest.raises(ValueError, match='mode'):
        resize_pos_embed(pos, (2, 3), (4, 4), mode='lanczos')


def test_attention_matches_reference():
    attn = MultiheadSelfAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    q, k, v = attn.qkv(x).reshape(2, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) / 2.0).softmax(-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(attn(x), expected)
    with pytest.raises(ValueError, match='divisible'):
        MultiheadSelfAttention(10, 4)


def test_patch_embed_grid_and_same_padding():
    embed = PatchEmbed(3, 8, patch_size=4, input_size=(10, 13))
    assert embed.init_out_size == (3, 4)
    tokens, hw = embed(torch.randn(1, 3, 10, 13))
    assert hw == (3, 4) and tokens.shape == (1, 12, 8)
    same = PatchEmbed(3, 8, patch_size=4, padding='same', norm_cfg=dict(type='LN'))
    tokens, hw = same(torch.randn(1, 3, 9, 9))
    assert hw == (3, 3) and tokens.shape == (1, 9, 8)
    with pytest.raises(ValueError, match='padding'):
        PatchEmbed(padding='reflect')


def test_cls_token_output_computes_only_the_class_token_of_the_last_layer():
    cls_model = _tiny(out_type='cls_token', out_indices=(0, 2), drop_path_rate=0.1)
    raw_model = _tiny(out_type='raw', out_indices=(0, 2), drop_path_rate=0.1)
    raw_model.load_state_dict(cls_model.state_dict())
    cls_model.eval(), raw_model.eval()
    x = torch.randn(2, 3, 40, 72)
    with torch.no_grad():
        for got, raw in zip(cls_model(x), raw_model(x)):
            torch.testing.assert_close(got, raw[:, 0], rtol=1e-5, atol=1e-5)
    # training: the same gradients as through the full last layer
    cls_model.train(), raw_model.train()
    torch.manual_seed(1)
    sum(o.sum() for o in cls_model(x)).backward()
    torch.manual_seed(1)
    sum(o[:, 0].sum() for o in raw_model(x)).backward()
    for (name, a), b in zip(cls_model.named_parameters(), raw_model.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_jit_trace_at_another_input_size():
    # FLOP counting traces the model: sizes are then 0-d tensors, pos_embed resizing takes them
    model = _tiny(out_type='featmap', img_size=64).eval()
    x = torch.randn(1, 3, 48, 80)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(model, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x)[0], model(x)[0])


def test_layer_attributes_mmpretrain_configs_read():
    """mmpretrain's tests read ``layers[i].ffn.feedforward_channels`` and ``.embed_dims``."""
    model = VisionTransformer(arch=TINY, img_size=32, patch_size=16, out_indices=-1)
    assert model.layers[0].ffn.feedforward_channels == 64
    assert model.layers[0].ffn.embed_dims == 32
    assert model.layers[0].embed_dims == 32
