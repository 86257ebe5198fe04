"""BEiTViT (BEiT; mmseg's MAE through its twin): mmpretrain's keys and outputs, timm's through
the converter, metadata, out_indices, truncated build, freezing, checkpointing, input checks,
layer depths, the relative position bias at other sizes, configs.

mmseg parity (BEiT, MAE, their load-time table resize) is in tests/downstream/test_beit_parity.py.
"""
import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters.timm_beit import (convert_timm_beit, is_timm_beit,
                                                         revert_timm_beit)
from mmbackbones.compat.beit import MMSegBEiT, MMSegMAE
from mmbackbones.models.backbones.beit import BEiTViT, arch_zoo
from mmbackbones.models.layers.rel_pos_bias import (relative_position_bias,
                                                    relative_position_index)
from tests.parity import (assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_mmpretrain_parity, family_configs,
                          mmpretrain_backbone, perturb_, timm_converted)

ARCH = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


def _tiny(**kwargs) -> BEiTViT:
    torch.manual_seed(0)
    model = BEiTViT(**{'arch': ARCH, 'img_size': 32, 'patch_size': 8, **kwargs})
    model.init_weights()
    perturb_(model)
    return model


def test_arch_table_is_mmpretrains():
    assert BEiTViT.arch_zoo == mmpretrain_backbone('BEiTViT').arch_zoo == arch_zoo


@pytest.mark.parametrize('kwargs,sizes', [
    (dict(), [(32, 32)]),
    (dict(out_type='featmap', out_indices=(0, 2), final_norm=True), [(32, 32)]),
    (dict(use_abs_pos_emb=True, bias=True, out_type='raw'), [(32, 32)]),
    (dict(use_rel_pos_bias=False, use_shared_rel_pos_bias=True, out_type='cls_token'),
     [(32, 32)]),
    (dict(img_size=(40, 56), out_type='featmap', bias=False), [(40, 56), (33, 49)]),
])
def test_mmpretrain_parity(tmp_path, kwargs, sizes):
    """Odd sides: mmpretrain pads to the patch grid; its bias needs the img_size grid, so the
    odd sizes are those whose padded grid is the window."""
    args = dict(dict(arch=ARCH, img_size=32, patch_size=8), **kwargs)
    theirs = mmpretrain_backbone('BEiTViT')(**args)
    assert_mmpretrain_parity(theirs, lambda init_cfg: BEiTViT(**args, init_cfg=init_cfg),
                             tmp_path, sizes, randomize=perturb_)


def test_timm_parity_through_the_converter():
    timm_model, converted = timm_converted(
        'beit_base_patch16_224', is_timm_beit, convert_timm_beit, randomize=perturb_)
    ours = BEiTViT(arch='base').eval()
    ours.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = timm_model.forward_head(timm_model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(ours(x)[0], expected, rtol=1e-5, atol=1e-5)
    back = revert_timm_beit(ours.state_dict())
    assert set(back) == {k for k in timm_model.state_dict() if not k.startswith('head.')}
    with pytest.raises(ValueError, match='qkv.bias'):
        revert_timm_beit(_tiny(bias=True).state_dict())


def test_timm_layout_loads_through_every_route(tmp_path):
    ours = _tiny()
    timm_sd = revert_timm_beit(ours.state_dict())
    path = str(tmp_path / 'timm.pth')
    torch.save(timm_sd, path)
    other = BEiTViT(arch=ARCH, img_size=32, patch_size=8,
                    init_cfg=dict(type='Pretrained', checkpoint=path))
    other.init_weights()
    for key, value in ours.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


def test_metadata_before_forward_and_shapes():
    model = _tiny(out_type='featmap', out_indices=(0, 2)).eval()
    assert model.out_channels == (32, 32) and model.out_strides == (8, 8)
    assert model.out_names == ('stage1', 'stage3')
    assert set(model.output_shape()) == {'stage1', 'stage3'}
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 37, 50))
        empty = model(torch.zeros(0, 3, 37, 50))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 5, 7)] * 2
    assert [tuple(o.shape) for o in empty] == [(0, 32, 5, 7)] * 2
    assert _tiny().out_strides == (None,)  # avg_featmap: pooled


def test_other_sizes_read_the_table_exactly_or_resize_it():
    table = torch.randn(4 * 4 * 9 + 3 - 4 * 4 * 9 + (2 * 4 - 1) ** 2, 2)  # window (4, 4)
    small = relative_position_bias(table, (4, 4), (2, 3))
    # the offset (dh, dw) between two patches reads the same table row at any grid
    assert torch.equal(small[:, 1, 2], table[(0 + 3) * 7 + (-1 + 3)])
    assert torch.equal(small[:, 0, 0], table[-1])
    assert relative_position_bias(table, (4, 4), (5, 6)).shape == (2, 31, 31)
    assert torch.equal(relative_position_bias(table, (4, 4), (4, 4),
                                              relative_position_index((4, 4))),
                       relative_position_bias(table, (4, 4), (4, 4)))
    model = _tiny(out_type='featmap').eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 48))[0].shape == (1, 32, 8, 6)


def test_with_cls_token_false_and_shared_bias():
    model = _tiny(with_cls_token=False, out_type='featmap').eval()
    assert model.cls_token is None
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 32, 4, 4)


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(out_indices=(3,)), ValueError, 'out_indices'),
    (dict(out_indices=(0, 0)), ValueError, 'out_indices'),
    (dict(out_indices='all'), TypeError, 'out_indices'),
    (dict(frozen_stages=4), ValueError, 'frozen_stages'),
    (dict(bias='qkv'), ValueError, 'bias'),
    (dict(out_type='map'), ValueError, 'out_type'),
    (dict(out_type='cls_token', with_cls_token=False), ValueError, 'with_cls_token'),
    (dict(use_shared_rel_pos_bias=True), ValueError, 'use_shared_rel_pos_bias'),
    (dict(layer_scale_init_value=-1), ValueError, 'layer_scale_init_value'),
    (dict(drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(patch_cfg=dict(padding=2)), ValueError, 'padding'),
    (dict(layer_cfgs=dict(nope=1)), ValueError, 'layer_cfgs'),
    (dict(arch='huge'), ValueError, 'arch'),
    (dict(arch=dict(embed_dims=30, num_layers=1, num_heads=4, feedforward_channels=8)),
     ValueError, 'divisible'),
    (dict(norm_cfg=dict(type='Nope')), KeyError, 'norm_cfg'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(with_cp=1), TypeError, 'with_cp'),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words):
        BEiTViT(**{'arch': ARCH, 'img_size': 32, 'patch_size': 8, **kwargs})


def test_truncated_build_loads_a_full_checkpoint(tmp_path):
    full = _tiny(out_type='featmap', out_indices=(0, 1, 2), final_norm=True).eval()
    path = str(tmp_path / 'full.pth')
    torch.save(full.state_dict(), path)
    part = BEiTViT(arch=ARCH, img_size=32, patch_size=8, out_type='featmap', out_indices=(1,),
                   final_norm=True, init_cfg=dict(type='Pretrained', checkpoint=path))
    assert len(part.layers) == 2 and part.ln1 is None
    part.init_weights()
    part.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(part(x)[0], full(x)[1])


def test_frozen_stages_and_gradients():
    assert_frozen_stages(_tiny(frozen_stages=2), 2)
    model = _tiny(frozen_stages=3, final_norm=True, use_abs_pos_emb=True)
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.pos_embed.requires_grad and not model.ln1.weight.requires_grad
    assert not model.ln2.weight.requires_grad
    stem = _tiny(frozen_stages=0)
    frozen = sorted(n for n, p in stem.named_parameters() if not p.requires_grad)
    assert frozen == ['cls_token', 'patch_embed.projection.bias', 'patch_embed.projection.weight']
    assert_every_parameter_gets_gradients(_tiny(out_type='featmap', final_norm=True))


def test_with_cp_same_outputs_and_grads():
    plain, ckpt = _tiny(out_type='featmap'), _tiny(out_type='featmap', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for model in (plain, ckpt):
        model.train()
        model(x)[0].square().mean().backward()
        grads.append(model.layers[0].attn.relative_position_bias_table.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_norm_eval_of_the_mmseg_twin_keeps_layernorms_in_eval():
    model = MMSegBEiT(img_size=32, patch_size=8, embed_dims=32, num_layers=2, num_heads=4,
                      norm_eval=True).train()
    assert not any(m.training for m in model.modules() if isinstance(m, nn.LayerNorm))
    assert _tiny(norm_eval=True).train().layers[0].ln1.training  # the core: BatchNorm only


def test_dtypes_and_autocast():
    model = _tiny(out_type='featmap').eval()
    with pytest.raises(TypeError, match='dtype'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float16))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(torch.rand(1, 3, 32, 32))[0]
    assert out.shape == (1, 32, 4, 4) and out.dtype in (torch.bfloat16, torch.float32)
    model.to(torch.float64)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32, dtype=torch.float64))[0].dtype == torch.float64


def test_get_layer_depth_is_mmpretrains():
    args = dict(arch=ARCH, img_size=32, patch_size=8, use_abs_pos_emb=True)
    theirs = mmpretrain_backbone('BEiTViT')(**args)
    ours = BEiTViT(**args)
    for name, _ in theirs.named_parameters():
        for prefix in ('', 'backbone.'):
            assert ours.get_layer_depth(prefix + name, prefix) == \
                theirs.get_layer_depth(prefix + name, prefix), name
    assert ours.get_layer_depth('head.fc.weight', 'backbone.') == (4, 5)


def test_mae_twin_fills_missing_tables_and_scales_from_a_plain_vit():
    mae = MMSegMAE(img_size=32, patch_size=8, embed_dims=32, num_layers=2, num_heads=4)
    mae.init_weights()
    plain = {k: v for k, v in mae.state_dict().items()
             if not k.endswith(('relative_position_bias_table', 'gamma_1', 'gamma_2'))}
    plain['ln1.weight'] = torch.ones(32)  # MAE's final norm, which mmseg's MAE does not use
    plain['ln1.bias'] = torch.zeros(32)
    mae.load_state_dict(plain, strict=True)
    assert torch.equal(mae.layers[0].attn.relative_position_bias_table,
                       torch.zeros_like(mae.layers[0].attn.relative_position_bias_table))


def test_registry_names():
    assert type(build_backbone(dict(type='mmcls.BEiTViT', arch=ARCH, img_size=32,
                                    patch_size=8))) is BEiTViT
    assert type(build_backbone(dict(type='mmbackbones.mmseg.BEiT', embed_dims=32, num_layers=1,
                                    num_heads=4, img_size=32))) is MMSegBEiT


@pytest.mark.parametrize('path', family_configs('beit') + family_configs('mae'))
def test_shipped_configs_build_and_run(path):
    """Each shipped config builds its whole architecture (meta device: no memory) with the
    metadata it declares; a one-layer copy, everything else as shipped, runs a forward."""
    from mmbackbones.builder import backbone_cfg_from_config, load_config
    cfg = backbone_cfg_from_config(load_config(path))
    with torch.device('meta'):
        full = build_backbone(dict(cfg))
    assert isinstance(full, BEiTViT) and len(full.layers) == max(full.out_indices) + 1
    small = dict(cfg)
    if isinstance(full, (MMSegBEiT, MMSegMAE)):
        small.update(num_layers=1, out_indices=(0,))
    else:
        small['arch'] = dict(full.arch_settings, num_layers=1)
    model = build_backbone(small).eval()
    assert model.out_channels[0] == full.out_channels[0]
    assert model.out_strides[0] == full.out_strides[0]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))[0]
    assert out.shape[1] == model.out_channels[0]
    if model.out_strides[0] is not None:
        assert out.shape[-1] == 32 // model.out_strides[0]


def test_traced_bias_equals_eager_at_smaller_and_larger_grids():
    table = torch.randn((2 * 4 - 1) ** 2 + 3, 2)
    for grid in ((2, 3), (4, 4), (5, 6)):
        eager = relative_position_bias(table, (4, 4), grid)

        def traced(x):
            return relative_position_bias(table, (4, 4), (x.shape[0], x.shape[1]))
        with torch.no_grad():
            fn = torch.jit.trace(traced, torch.zeros(3, 3), check_trace=False)
        torch.testing.assert_close(fn(torch.zeros(*grid)), eager, rtol=1e-5, atol=1e-6)


def test_dynamic_onnx_export_smaller_and_larger_than_the_window(tmp_path):
    """``export --dynamic``: the relative position bias stays in the graph, so the CLI's
    onnxruntime check at an odd size (grid larger than the traced one) passes."""
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    result = run_cli('export', 'beit-base-p16_224', '-o', tmp_path / 'beit.onnx',
                     '--input-size', '48', '48', '--dynamic', '--cfg-options',
                     'model.backbone.arch=deit-tiny', 'model.backbone.img_size=64',
                     'model.backbone.out_type=featmap')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'onnxruntime check ok' in result.stdout


def test_info_and_detectron2_adapter_output_shape():
    from mmbackbones.integrations import detectron2 as d2i
    from tests.cli_helpers import run_cli
    result = run_cli('info', 'beit-base-p16_640_mmseg-upernet', '--cfg-options',
                     'model.backbone.embed_dims=64', 'model.backbone.num_heads=2',
                     'model.backbone.img_size=64')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'stage12' in result.stdout and '64' in result.stdout
    adapter = d2i.Detectron2Backbone(dict(type='mmbackbones.mmseg.BEiT', img_size=32,
                                          patch_size=8, embed_dims=32, num_layers=2,
                                          num_heads=4, out_indices=(0, 1)))
    shapes = adapter.output_shape()
    assert [(s.channels, s.stride) for s in shapes.values()] == [(32, 8), (32, 8)]
    out = adapter(torch.randn(1, 3, 40, 48))
    assert [tuple(v.shape) for v in out.values()] == [(1, 32, 5, 6)] * 2


def test_convert_to_timm_and_mmseg_from_the_keys():
    from mmbackbones.checkpoint.convert import family_of, to_native
    state = _tiny().state_dict()
    assert family_of(state) == 'BEiTViT'  # not the ViT, whose keys a BEiT also has
    assert set(to_native(state, 'timm')) == set(revert_timm_beit(state))
    assert to_native(state, 'mmseg') == dict(state)  # mmseg's names are ours
    with pytest.raises(ValueError, match='qkv.bias'):
        to_native(_tiny(bias=True).state_dict(), 'timm')
