"""PyramidVisionTransformer (v1) and PyramidVisionTransformerV2: mmdet's key layout, metadata,
out_indices, truncated build, freezing, checkpointing, input checks, layer depths, the
official-release and timm converters, configs.

Parity with mmdet's own classes is in tests/downstream/test_pvt_parity.py (mmdet lives there)."""
import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.official_pvt import (convert_official_pvt,
                                                           is_official_pvt, revert_official_pvt)
from mmbackbones.checkpoint.converters.timm_pvt_v2 import (convert_timm_pvt_v2, is_timm_pvt_v2,
                                                          revert_timm_pvt_v2)
from mmbackbones.models.backbones.pvt import (PVT_ARCHS, PVTV2_ARCHS, PyramidVisionTransformer,
                                              PyramidVisionTransformerV2)
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_with_cp_matches, family_configs, perturb_,
                          timm_reference)

TINY = dict(embed_dims=8, num_layers=[1, 2, 1, 1], pretrain_img_size=64, drop_path_rate=0.)
CLASSES = {'v1': PyramidVisionTransformer, 'v2': PyramidVisionTransformerV2}


def _tiny(version='v2', **kwargs):
    torch.manual_seed(0)
    model = CLASSES[version](**{**TINY, **kwargs})
    model.init_weights()
    return model


# ----- keys and metadata -------------------------------------------------------------------------
def test_mmdet_key_layout_v1_and_v2():
    v1 = list(_tiny('v1').state_dict())
    v2 = list(_tiny('v2').state_dict())
    # v1: position embedding first in the block list, FFN without depth-wise conv, no norms
    assert 'layers.0.1.0.pos_embed' in v1 and 'layers.0.1.1.ffn.layers.3.weight' in v1
    assert not any(k.startswith('layers.0.2.') for k in v1)
    assert v1[:4] == ['layers.0.0.projection.weight', 'layers.0.0.projection.bias',
                      'layers.0.0.norm.weight', 'layers.0.0.norm.bias']
    block = [k[len('layers.0.1.0.'):] for k in v2 if k.startswith('layers.0.1.0.')]
    assert block == [
        'norm1.weight', 'norm1.bias', 'attn.attn.in_proj_weight', 'attn.attn.in_proj_bias',
        'attn.attn.out_proj.weight', 'attn.attn.out_proj.bias', 'attn.sr.weight', 'attn.sr.bias',
        'attn.norm.weight', 'attn.norm.bias', 'norm2.weight', 'norm2.bias',
        'ffn.layers.0.weight', 'ffn.layers.0.bias', 'ffn.layers.1.weight', 'ffn.layers.1.bias',
        'ffn.layers.4.weight', 'ffn.layers.4.bias']
    assert 'layers.3.2.weight' in v2 and not any('pos_embed' in k for k in v2)


@pytest.mark.parametrize('version,arch', [('v1', a) for a in PVT_ARCHS] +
                         [('v2', a) for a in PVTV2_ARCHS])
def test_every_arch_metadata(version, arch):
    embed, layers, _ = CLASSES[version].arch_settings[arch]
    with torch.device('meta'):
        model = CLASSES[version](arch=arch)
    assert model.out_channels == tuple(embed * h for h in (1, 2, 5, 8))
    assert model.out_strides == (4, 8, 16, 32)
    assert model.out_names == ('stage1', 'stage2', 'stage3', 'stage4')
    assert [len(stage[1]) for stage in model.layers] == [n + (version == 'v1') for n in layers]


def test_parameter_counts():
    """PVTv2-B0's encoder: timm's pvt_v2_b0 without its 1000-class head (3,666,760 - 257,000);
    PVT-Tiny's: 12,714,240 (mmdet's class with the pvt-t config, counted in the downstream
    tier too)."""
    with torch.device('meta'):
        b0, tiny = PyramidVisionTransformerV2(arch='b0'), PyramidVisionTransformer(arch='t')
    assert sum(p.numel() for p in b0.parameters()) == 3_409_760
    assert sum(p.numel() for p in tiny.parameters()) == 12_714_240


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_forward_shapes_any_size_and_empty_batch(version):
    model = _tiny(version).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 37, 50))
        empty = model(torch.zeros(0, 3, 37, 50))
    expected = {'v1': [(9, 12), (4, 6), (2, 3), (1, 1)],
                'v2': [(10, 13), (5, 7), (3, 4), (2, 2)]}[version]
    assert [tuple(o.shape[2:]) for o in outs] == expected
    assert [o.shape[1] for o in outs] == [8, 16, 40, 64]
    assert [tuple(o.shape) for o in empty] == [(0,) + tuple(o.shape[1:]) for o in outs]


# ----- out_indices, arguments ------------------------------------------------------------------
@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_out_indices_order_subset_and_unbuilt_stages(version):
    full = _tiny(version).eval()
    part = CLASSES[version](**TINY, out_indices=(2, 0)).eval()
    assert len(part.layers) == 3  # stage 4 not built
    part.load_state_dict({k: v for k, v in full.state_dict().items()
                          if not k.startswith('layers.3.')})
    assert part.out_channels == (40, 8) and part.out_strides == (16, 4)
    assert part.out_names == ('stage3', 'stage1')
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = full(x), part(x)
    assert torch.equal(b[0], a[2]) and torch.equal(b[1], a[0])
    assert CLASSES[version](**TINY, out_indices=-1).out_names == ('stage4',)


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(out_indices=(4,)), ValueError, 'out_indices'),
    (dict(out_indices=(0, 0)), ValueError, 'out_indices'),
    (dict(out_indices='all'), TypeError, 'out_indices'),
    (dict(num_layers=[1, 1, 1]), ValueError, 'num_layers'),
    (dict(num_heads=[1, 2, 0, 4]), ValueError, 'num_heads'),
    (dict(sr_ratios=(8, 4, 2)), ValueError, 'sr_ratios'),
    (dict(mlp_ratios=(8, 4, 2)), ValueError, 'mlp_ratios'),
    (dict(paddings=[0, 0, -1, 0]), ValueError, 'paddings'),
    (dict(pretrain_img_size=(224, 224, 3)), TypeError, 'pretrain_img_size'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(qkv_bias='yes'), TypeError, 'qkv_bias'),
    (dict(use_abs_pos_embed=1), TypeError, 'use_abs_pos_embed'),
    (dict(norm_cfg=dict(type='BN')), ValueError, 'LayerNorm-like'),
    (dict(act_cfg=dict(type='Nope')), KeyError, 'act_cfg'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(arch='b0'), ValueError, 'arch'),  # a v2 arch on v1
    (dict(arch='t'), ValueError, 'embed_dims'),  # TINY's embed_dims=8 contradicts t's 64
    (dict(pretrained=3), TypeError, 'pretrained'),
    (dict(embed_dims=20000), ValueError, 'embed_dims \\* num_heads\\[2\\]'),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words):
        PyramidVisionTransformer(**{**TINY, **kwargs})


def test_v2_fixes_its_flags_as_mmdet():
    with pytest.raises(TypeError, match='patch_sizes'):
        PyramidVisionTransformerV2(patch_sizes=[4, 2, 2, 2])
    with torch.device('meta'):
        model = PyramidVisionTransformerV2()
    assert model.use_conv_ffn and model.norm_after_stage and not model.use_abs_pos_embed
    assert model.layers[0][0].projection.kernel_size == (7, 7)
    assert model.layers[0][0].projection.padding == (3, 3)


def test_init_cfg_without_type_means_pretrained_as_in_mmdet():
    model = PyramidVisionTransformerV2(**TINY, init_cfg=dict(checkpoint='x.pth'))
    assert model.init_cfg == dict(type='Pretrained', checkpoint='x.pth')
    with pytest.warns(UserWarning, match='deprecated'):
        model = PyramidVisionTransformer(**TINY, pretrained='y.pth')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='y.pth')


def test_dtypes_and_input_checks():
    model = _tiny().eval()
    with pytest.raises(TypeError, match='dtype torch.float32 .* got torch.float16'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float16))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.randn(1, 4, 32, 32))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        assert len(model(torch.rand(1, 3, 32, 32, dtype=torch.bfloat16))) == 4
    model.to(torch.float64)
    with torch.no_grad():
        assert all(o.dtype == torch.float64 for o in model(torch.rand(1, 3, 32, 32,
                                                                       dtype=torch.float64)))


# ----- freezing, checkpointing, layer depth -----------------------------------------------------
@pytest.mark.parametrize('version', ['v1', 'v2'])
@pytest.mark.parametrize('frozen', [0, 2, 4])
def test_frozen_stages(version, frozen):
    model = _tiny(version, frozen_stages=frozen)
    assert_frozen_stages(model, frozen)
    if frozen == 2:
        frozen_names = [n for n, p in model.named_parameters() if not p.requires_grad]
        assert 'layers.1.1.0.pos_embed' in frozen_names or version == 'v2'
        assert all(n.startswith(('layers.0.', 'layers.1.')) for n in frozen_names)


def test_norm_eval_changes_nothing_without_batchnorms():
    model = _tiny(norm_eval=True).train()
    assert model.norm_eval is True and all(m.training for m in model.modules())


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_with_cp_and_every_parameter_used(version):
    assert_with_cp_matches(_tiny(version), _tiny(version, with_cp=True))
    assert_every_parameter_gets_gradients(_tiny(version))


def test_get_layer_depth():
    model = PyramidVisionTransformer(**{**TINY, 'num_layers': [2, 1, 3, 1]})
    depth = model.get_layer_depth
    n = 2 + 1 + 3 + 1 + 2
    assert depth('backbone.layers.0.0.projection.weight', 'backbone.') == (0, n)
    assert depth('backbone.layers.0.1.0.pos_embed', 'backbone.') == (0, n)
    assert depth('backbone.layers.0.1.2.norm1.weight', 'backbone.') == (2, n)
    assert depth('backbone.layers.1.1.0.pos_embed', 'backbone.') == (3, n)
    assert depth('backbone.layers.2.1.3.ffn.layers.0.weight', 'backbone.') == (6, n)
    assert depth('neck.conv.weight', 'backbone.') == (n - 1, n)
    assert {depth(k)[0] for k, _ in model.named_parameters()} == set(range(0, n - 1))
    v2 = PyramidVisionTransformerV2(**{**TINY, 'num_layers': [2, 1, 3, 1]})
    assert v2.get_layer_depth('layers.0.1.1.norm1.weight') == (2, n)
    assert v2.get_layer_depth('layers.3.2.weight') == (7, n)


def test_default_init_is_mmdets():
    model = _tiny('v1')
    assert torch.equal(model.layers[0][0].projection.bias, torch.zeros(8))
    pos = model.layers[0][1][0].pos_embed
    assert 0.01 < pos.std() < 0.03  # mmdet's trunc_normal_(std=0.02); zeros before init


# ----- official / timm checkpoints --------------------------------------------------------------
@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_official_release_loads_through_init_cfg(version, tmp_path):
    """A random PVT written in the official layout (with a class token, a head and v1's
    class-token position row, as the released files) loads with auto conversion: every tensor
    comes back and the outputs are equal."""
    source = _tiny(version)
    perturb_(source)
    official = revert_official_pvt(source.state_dict())
    official['head.weight'], official['head.bias'] = torch.randn(10, 64), torch.randn(10)
    if version == 'v1':
        official['cls_token'] = torch.randn(1, 1, 64)
        official['norm.weight'] = torch.randn(64)
    assert is_official_pvt(official) and not is_timm_pvt_v2(official)
    path = str(tmp_path / 'pvt.pth')
    torch.save(official, path)
    ours = CLASSES[version](**TINY, init_cfg=dict(checkpoint=path))  # mmdet's spelling
    ours.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    x = torch.randn(1, 3, 45, 40)
    with torch.no_grad():
        for a, b in zip(source.eval()(x), ours.eval()(x)):
            assert torch.equal(a, b)


def test_official_stage4_class_token_row_is_dropped_as_mmdet():
    """The released v1 files (224 px) hold 1 + 7 * 7 stage-4 positions; mmdet drops row 0."""
    official = revert_official_pvt(PyramidVisionTransformer(embed_dims=8, num_layers=[1] * 4)
                                   .state_dict())
    grid = official['pos_embed4']
    assert grid.shape == (1, 49, 64)
    official['pos_embed4'] = torch.cat([torch.randn(1, 1, 64), grid], 1)
    assert torch.equal(convert_official_pvt(official)['layers.3.1.0.pos_embed'], grid)


def test_official_converter_refuses_strangers_and_halves():
    official = revert_official_pvt(_tiny('v2').state_dict())
    bad = dict(official, **{'block1.0.attn.pool.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='attn.pool'):
        convert_official_pvt(bad)
    half = dict(official)
    del half['block1.0.attn.kv.weight']
    with pytest.raises(KeyError, match='query/key-value'):
        convert_official_pvt(half)


def test_timm_pvt_v2_equal_outputs_and_round_trip():
    timm_model = timm_reference('pvt_v2_b0', perturb_)
    for m in timm_model.modules():  # timm's patch-embedding norms use eps 1e-5, mmdet's 1e-6
        if isinstance(m, nn.LayerNorm):
            m.eps = 1e-6
    state = timm_model.state_dict()
    assert is_timm_pvt_v2(state) and not is_official_pvt(state)
    ours = PyramidVisionTransformerV2(arch='b0').eval()
    ours.load_state_dict(state)  # the load hook converts
    assert set(revert_timm_pvt_v2(ours.state_dict())) == {k for k in state
                                                          if not k.startswith('head.')}
    converted, name = convert_state_dict(state, 'auto', {k: tuple(v.shape) for k, v in
                                                         ours.state_dict().items()})
    assert name == 'timm_pvt_v2' and set(converted) == set(ours.state_dict())
    for size in ((64, 64), (45, 61)):
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = timm_model.forward_intermediates(x, intermediates_only=True)
            got = ours(x)
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5 * e.abs().max().item())


def test_timm_linear_variant_is_refused():
    state = revert_timm_pvt_v2(_tiny('v2').state_dict())
    state['stages.0.blocks.0.attn.pool.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='linear'):
        convert_timm_pvt_v2(state)


# ----- registry and configs ---------------------------------------------------------------------
def test_registered_and_built_by_name():
    model = build_backbone(dict(type='PyramidVisionTransformerV2', **TINY, out_indices=(3,)))
    assert isinstance(model, PyramidVisionTransformerV2) and model.out_channels == (64,)


@pytest.mark.parametrize('path', family_configs('pvt'))
def test_shipped_configs_build_and_run(path):
    model = assert_config_builds_and_runs(path, PyramidVisionTransformer)
    assert model.drop_path_rate == 0.1 and model.arch is not None
    assert len(family_configs('pvt')) == 10


# ----- tools: detectron2 adapter, info, show, export -------------------------------------------
def test_detectron2_adapter_output_shape_before_forward():
    from mmbackbones.integrations import detectron2 as d2i
    adapter = d2i.Detectron2Backbone(dict(type='PyramidVisionTransformerV2', **TINY,
                                          out_indices=(1, 3)))
    assert {k: (v.channels, v.stride) for k, v in adapter.output_shape().items()} == {
        'stage2': (16, 8), 'stage4': (64, 32)}
    out = adapter(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {'stage2': (1, 16, 8, 8),
                                                          'stage4': (1, 64, 2, 2)}


def test_info_and_show_commands(tmp_path):
    import json

    from tests.cli_helpers import DEMO_IMAGE, run_cli
    result = run_cli('info', 'pvtv2-b0', '--input-size', '64', '64', '--json', '--no-memory')
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert [o['channels'] for o in data['outputs']] == [32, 64, 160, 256]
    assert data['params'] == 3_409_760
    out = tmp_path / 'pvt.png'
    shown = run_cli('show', 'pvt-t', DEMO_IMAGE, '-o', out, '--input-size', '64', '64')
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert out.stat().st_size > 0


def test_onnx_export_with_dynamic_sides(tmp_path):
    """``mmbackbones export pvt-t --dynamic``: v1's position embeddings are resized to the grid
    inside the graph; onnxruntime matches PyTorch at 64 px and at an odd size."""
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    import json

    from tests.cli_helpers import run_cli
    result = run_cli('export', 'pvt-t', '-o', str(tmp_path / 'pvt.onnx'), '--input-size', '64',
                     '64', '--dynamic', '--json')
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert len(report['verify']) == 2 and report['max_abs_diff'] < 1e-4


def test_too_small_input_is_refused_naming_the_size():
    model = _tiny('v1').eval()  # 4x4 patches then sr 8 on stage 1: 32 px is the least
    with pytest.raises(ValueError, match=r'input size \(16, 40\) is too small: stage 1'):
        model(torch.randn(1, 3, 16, 40))
    assert len(model(torch.randn(1, 3, 32, 32))) == 4
