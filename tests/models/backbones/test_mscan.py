"""MSCAN (SegNeXt): mmseg's key layout, metadata, out_indices and the truncated build, freezing,
norm_eval, checkpointing, input checks, layer depths, configs.

Parity with mmseg's own class and its shipped configs is in tests/downstream/test_mscan_parity.py.
"""
import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.compat.mscan import MMSegMSCAN
from mmbackbones.models.backbones.mscan import ARCH_SETTINGS, MSCAN
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_norm_eval_keeps_bn_statistics,
                          assert_with_cp_matches, family_configs, perturb_,
                          randomize_batchnorm_)

TINY = dict(embed_dims=[8, 16, 24, 32], depths=[1, 2, 1, 1], mlp_ratios=[8, 8, 4, 4],
            norm_cfg=dict(type='BN', requires_grad=True))


def _tiny(**kwargs) -> MSCAN:
    torch.manual_seed(0)
    model = MSCAN(**{**TINY, **kwargs})
    model.init_weights()
    perturb_(model)
    randomize_batchnorm_(model)
    return model


def test_mmseg_key_layout():
    keys = list(_tiny().state_dict())
    assert keys[:3] == ['patch_embed1.proj.0.weight', 'patch_embed1.proj.0.bias',
                        'patch_embed1.proj.1.weight']
    block = [k[len('block1.0.'):] for k in keys if k.startswith('block1.0.')]
    assert block[:2] == ['layer_scale_1', 'layer_scale_2']
    assert 'attn.spatial_gating_unit.conv2_2.weight' in block and 'mlp.dwconv.weight' in block
    assert 'norm4.weight' in keys and 'patch_embed4.proj.weight' in keys


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_every_arch_metadata_before_forward(arch):
    with torch.device('meta'):
        model = MSCAN(arch=arch, norm_cfg=dict(type='BN'))
    dims, depths, _ = ARCH_SETTINGS[arch]
    assert model.out_channels == tuple(dims) and model.out_strides == (4, 8, 16, 32)
    assert model.out_names == ('stage1', 'stage2', 'stage3', 'stage4')
    assert [len(getattr(model, f'block{i}')) for i in range(1, 5)] == depths
    assert set(model.output_shape()) == set(model.out_names)


def test_forward_shapes_any_size_and_empty_batch():
    model = _tiny().eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 37, 50))
        empty = model(torch.zeros(0, 3, 37, 50))
    assert [tuple(o.shape) for o in outs] == [(2, 8, 10, 13), (2, 16, 5, 7), (2, 24, 3, 4),
                                              (2, 32, 2, 2)]
    assert [tuple(o.shape) for o in empty] == [(0,) + tuple(o.shape[1:]) for o in outs]


def test_out_indices_order_and_truncated_build_loads_a_full_checkpoint():
    full = _tiny().eval()
    part = MSCAN(**TINY, out_indices=(2, 0)).eval()
    assert not hasattr(part, 'block4') and not hasattr(part, 'norm4')
    part.load_state_dict({k: v for k, v in full.state_dict().items()
                          if not k.startswith(('patch_embed4.', 'block4.', 'norm4.'))})
    assert part.out_channels == (24, 8) and part.out_strides == (16, 4)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = full(x), part(x)
    assert torch.equal(b[0], a[2]) and torch.equal(b[1], a[0])


def test_truncated_build_through_the_loader(tmp_path):
    full = _tiny().eval()
    path = str(tmp_path / 'full.pth')
    torch.save(full.state_dict(), path)
    part = MSCAN(**TINY, out_indices=(1,), init_cfg=dict(type='Pretrained', checkpoint=path))
    part.init_weights()
    part.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(part(x)[0], full(x)[1])


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(out_indices=(4,)), ValueError, 'out_indices'),
    (dict(out_indices=(0, 0)), ValueError, 'out_indices'),
    (dict(out_indices='all'), TypeError, 'out_indices'),
    (dict(depths=[1, 1, 1]), ValueError, 'depths'),
    (dict(embed_dims=[8, 16, 0, 32]), ValueError, 'embed_dims'),
    (dict(mlp_ratios=[8, 8, -1, 4]), ValueError, 'mlp_ratios'),
    (dict(num_stages=5), ValueError, 'num_stages'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(norm_eval=1), TypeError, 'norm_eval'),
    (dict(norm_cfg=dict(type='Nope')), KeyError, 'norm_cfg'),
    (dict(act_cfg='GELU'), TypeError, 'act_cfg'),
    (dict(attention_kernel_sizes=[5, [1, 7]]), ValueError, 'pair up'),
    (dict(attention_kernel_sizes=[5, 7, [1, 11], [1, 21]]), ValueError, 'strip'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(arch='x'), ValueError, 'arch'),
    (dict(arch='t'), ValueError, 'embed_dims'),  # TINY's embed_dims contradict 't'
    (dict(pretrained=3), TypeError, 'pretrained'),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words):
        MSCAN(**{**TINY, **kwargs})


def test_input_checks_and_dtypes():
    model = _tiny().eval()
    with pytest.raises(ValueError, match='4-D'):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.randn(1, 4, 32, 32))
    with pytest.raises(TypeError, match='dtype'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float16))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        assert len(model(torch.rand(1, 3, 32, 32))) == 4
    model.to(torch.float64)
    with torch.no_grad():
        assert all(o.dtype == torch.float64 for o in model(torch.rand(1, 3, 32, 32,
                                                                       dtype=torch.float64)))


def test_frozen_stages_norm_eval_with_cp_and_gradients():
    assert_frozen_stages(_tiny(frozen_stages=2), 2)
    stem = _tiny(frozen_stages=0)
    frozen = {n.split('.')[0] for n, p in stem.named_parameters() if not p.requires_grad}
    assert frozen == {'patch_embed1'}
    assert_norm_eval_keeps_bn_statistics(_tiny(norm_eval=True))
    assert_with_cp_matches(_tiny(), _tiny(with_cp=True))
    assert_every_parameter_gets_gradients(_tiny())


def test_get_layer_depth():
    model = MSCAN(**TINY)
    n = 1 + 2 + 1 + 1 + 2
    depth = model.get_layer_depth
    assert depth('backbone.patch_embed1.proj.0.weight', 'backbone.') == (0, n)
    assert depth('backbone.block1.0.layer_scale_1', 'backbone.') == (1, n)
    assert depth('backbone.norm1.weight', 'backbone.') == (1, n)
    assert depth('backbone.patch_embed2.proj.weight', 'backbone.') == (2, n)
    assert depth('backbone.block2.1.mlp.fc1.weight', 'backbone.') == (3, n)
    assert depth('backbone.norm4.bias', 'backbone.') == (5, n)
    assert depth('decode_head.conv_seg.weight', 'backbone.') == (n - 1, n)
    assert {depth(k)[0] for k, _ in model.named_parameters()} == set(range(n - 1))


def test_default_init_is_mmsegs():
    model = MSCAN(**TINY)
    model.init_weights()
    conv = model.block1[0].mlp.fc1
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
    std = float(conv.weight.std())
    assert 0.5 < std / (2.0 / (1 * 1 * conv.out_channels)) ** 0.5 < 1.5
    assert torch.equal(model.norm1.weight, torch.ones(8))


def test_twin_and_registry_names():
    twin = build_backbone(dict(type='mmbackbones.mmseg.MSCAN', **TINY))
    assert type(twin) is MMSegMSCAN and twin.out_indices == (0, 1, 2, 3)
    assert type(build_backbone(dict(type='MSCAN', **TINY))) is MSCAN


@pytest.mark.parametrize('path', family_configs('mscan'))
def test_shipped_configs_build_and_run(path):
    assert_config_builds_and_runs(path, (MSCAN,))


def test_dynamic_onnx_export_and_info(tmp_path):
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    result = run_cli('export', 'mscan-t', '-o', tmp_path / 'mscan.onnx', '--input-size', '64',
                     '64', '--dynamic')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'onnxruntime check ok' in result.stdout and 'stage4' in result.stdout
    info = run_cli('info', 'mscan-t')
    assert info.returncode == 0 and '3,903,584' in info.stdout  # = mmseg's MSCAN-T


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations import detectron2 as d2i
    adapter = d2i.Detectron2Backbone(dict(type='MSCAN', norm_cfg=dict(type='BN'), **{
        k: v for k, v in TINY.items() if k != 'norm_cfg'}))
    shapes = adapter.output_shape()
    assert [(s.channels, s.stride) for s in shapes.values()] == [(8, 4), (16, 8), (24, 16),
                                                                 (32, 32)]
    out = adapter(torch.randn(1, 3, 64, 64))
    assert [v.shape[1] for v in out.values()] == [8, 16, 24, 32]
