"""HourglassNet: the contract on a tiny hourglass (metadata, out_indices and unbuilt later stacks,
frozen_stages, norm_eval, with_cp, empty batches, layer depth, fuse, configs). Parity with
mmdet's own class is in tests/downstream/test_vgg_hourglass_parity.py."""
import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint import load_checkpoint
from mmbackbones.models.backbones.hourglass import HourglassNet, MMDetHourglassNet
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_fuse_keeps_outputs,
                          assert_norm_eval_keeps_bn_statistics, assert_with_cp_matches,
                          family_configs, perturb_)

TINY = dict(downsample_times=2, stage_channels=(16, 16, 24), stage_blocks=(1, 1, 2),
            feat_channel=8)


def _tiny(**kwargs) -> HourglassNet:
    return HourglassNet(**{**TINY, **kwargs})


def test_metadata_before_forward_every_output_at_stride_4():
    model = _tiny(num_stacks=3, out_indices=(2, 0))
    assert model.out_names == ('stack3', 'stack1')
    assert model.out_channels == (8, 8) and model.out_strides == (4, 4)
    assert set(model.output_shape()) == {'stack3', 'stack1'}
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in out] == [(8, 16, 16), (8, 16, 16)]


def test_later_stacks_are_not_built_and_a_full_checkpoint_loads(tmp_path):
    full = _tiny(num_stacks=3)
    perturb_(full)
    part = _tiny(num_stacks=3, out_indices=(0, ))
    assert len(part.hourglass_modules) == len(part.out_convs) == 1
    assert len(part.inters) == len(part.conv1x1s) == len(part.remap_convs) == 0
    path = str(tmp_path / 'full.pth')
    torch.save(full.state_dict(), path)
    report = load_checkpoint(part, path, logger='silent')  # the default route
    assert not report.missing and len(report.loaded) == len(part.state_dict())
    assert any('not built' in n and 'hourglass_modules.1' in n for n in report.notes)
    full.eval()
    part.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(part(x)[0], full(x)[0])


def test_odd_input_sizes():
    model = _tiny().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 45, 61))
    assert [tuple(o.shape[-2:]) for o in out] == [(12, 16), (12, 16)]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(num_stacks=0), ValueError, 'num_stacks'),
    (dict(downsample_times=3), ValueError, 'downsample_times=3'),
    (dict(stage_blocks=(1, 1)), ValueError, 'one entry per level'),
    (dict(stage_channels='wide'), TypeError, 'stage_channels'),
    (dict(stage_channels=(16, 0, 24)), ValueError, 'stage_channels'),
    (dict(feat_channel=0), ValueError, 'feat_channel'),
    (dict(out_indices=2), ValueError, 'out_indices'),
    (dict(frozen_stages=3), ValueError, 'frozen_stages'),
    (dict(norm_eval='yes'), TypeError, 'norm_eval'),
    (dict(norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        _tiny(**kwargs)


def test_mmdet_twin_takes_only_mmdets_arguments():
    with pytest.raises(TypeError, match='out_indices'):
        MMDetHourglassNet(**TINY, out_indices=(0, ))
    twin = MMDetHourglassNet(**TINY)
    assert twin.out_indices == (0, 1) and twin.frozen_stages == -1 and not twin.norm_eval


@pytest.mark.parametrize('frozen_stages', [0, 1, 2])
def test_frozen_stages(frozen_stages):
    model = _tiny(frozen_stages=frozen_stages)
    assert_frozen_stages(model, frozen_stages)
    if frozen_stages == 1:  # stack 1 with the layers leading to stack 2
        for name, param in model.named_parameters():
            frozen = name.startswith(('stem', 'hourglass_modules.0', 'out_convs.0', 'inters.0',
                                      'conv1x1s.0', 'remap_convs.0'))
            assert param.requires_grad is not frozen, name


def test_norm_eval_gradients_and_with_cp():
    assert_norm_eval_keeps_bn_statistics(_tiny(norm_eval=True))
    assert_every_parameter_gets_gradients(_tiny())
    torch.manual_seed(0)
    plain = _tiny()
    assert_with_cp_matches(plain, _tiny(with_cp=True))


def test_empty_batch_and_input_checks():
    model = _tiny().eval()
    with torch.no_grad():
        empty, one = model(torch.zeros(0, 3, 32, 32)), model(torch.zeros(1, 3, 32, 32))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.int64))


def test_get_layer_depth():
    model = _tiny()
    assert model.get_layer_depth('backbone.stem.0.conv.weight', 'backbone.') == (0, 4)
    assert model.get_layer_depth('backbone.hourglass_modules.1.up1.0.conv1.weight',
                                 'backbone.') == (2, 4)
    assert model.get_layer_depth('backbone.remap_convs.0.conv.weight', 'backbone.') == (1, 4)
    assert model.get_layer_depth('bbox_head.x', 'backbone.') == (3, 4)
    for name, _ in model.named_parameters():
        assert model.get_layer_depth(name)[0] < 3, name


def test_init_weights_resets_convs_as_mmdet():
    model = _tiny()
    with torch.no_grad():
        model.stem[0].conv.weight.fill_(7.0)
    model.init_weights()
    assert model.stem[0].conv.weight.abs().max() < 1.0


def test_fuse_keeps_outputs():
    model = _tiny()
    perturb_(model)
    assert_fuse_keeps_outputs(model)


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2.contract import Detectron2Backbone
    adapter = Detectron2Backbone(_tiny()).eval()
    shapes = {k: (s.channels, s.stride) for k, s in adapter.output_shape().items()}
    assert shapes == {'stack1': (8, 4), 'stack2': (8, 4)}
    with torch.no_grad():
        out = adapter(torch.randn(1, 3, 32, 32))
    assert {k: (v.shape[1], 32 // v.shape[-1]) for k, v in out.items()} == shapes


@pytest.mark.parametrize('path', family_configs('hourglass'))
def test_shipped_configs_build(path):
    from mmbackbones import build_backbone_from_config
    with torch.device('meta'):
        model = build_backbone_from_config(path)
    assert isinstance(model, HourglassNet)
    assert model.out_channels == (256, ) * model.num_stacks
    assert model.out_strides == (4, ) * model.num_stacks


def test_hourglass52_config_runs():
    model = assert_config_builds_and_runs(family_configs('hourglass')[-1], HourglassNet, 32)
    assert model.num_stacks == 1


def test_registry_builds_every_spelling():
    with torch.device('meta'):
        assert type(build_backbone(dict(type='HourglassNet', **TINY))) is HourglassNet
        twin = build_backbone(dict(type='mmbackbones.mmdet.HourglassNet', **TINY))
    assert type(twin) is MMDetHourglassNet and twin.host == 'mmdet'


def test_onnx_export_round_trip(tmp_path):
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    import json

    from tests.cli_helpers import run_cli
    config = tmp_path / 'hg.py'
    config.write_text(f'model = dict(backbone=dict(type="HourglassNet", **{TINY!r}))\n')
    result = run_cli('export', config, '-o', tmp_path / 'hg.onnx', '--input-size', '32', '32',
                     '--json')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report['outputs'] == ['stack1', 'stack2'] and report['max_abs_diff'] < 1e-4


def test_hourglass_norms_are_bn_whatever_norm_cfg_says():
    """mmdet's quirk, kept for key identity: the hourglass modules ignore norm_cfg."""
    model = _tiny(norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    assert isinstance(model.stem[0].gn, nn.GroupNorm)
    assert isinstance(model.hourglass_modules[0].up1[0].bn1, nn.BatchNorm2d)
