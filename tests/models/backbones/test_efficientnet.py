"""EfficientNet / EfficientNetV2: mmpretrain parity, timm (``efficientnet_*``, ``tf_*``) through
the converter, the contract (metadata, out_indices, truncated build, mmpretrain's
frozen_stages, norm_eval, with_cp, empty batch, dtype, get_layer_depth, fuse), configs, ONNX
with TF 'same' padding at dynamic sides."""
import json

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters.timm_efficientnet import (convert_timm_efficientnet,
                                                                  is_timm_efficientnet,
                                                                  revert_timm_efficientnet)
from mmbackbones.models.backbones.efficientnet import EfficientNet, model_scaling
from mmbackbones.models.backbones.efficientnet_v2 import EfficientNetV2
from mmbackbones.models.layers.mobile_blocks import Conv2dSame
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_fuse_keeps_outputs, assert_mmpretrain_parity,
                          assert_norm_eval_keeps_bn_statistics, assert_outputs_close,
                          assert_with_cp_matches, family_configs, mmpretrain_backbone, perturb_,
                          timm_converted)

BN5 = dict(type='BN', eps=1e-5)
SIZES = [(32, 32), (33, 45)]


def test_arch_tables_are_mmpretrains():
    theirs = mmpretrain_backbone('EfficientNet')
    assert EfficientNet.layer_settings == theirs.layer_settings
    assert EfficientNet.arch_settings == theirs.arch_settings
    assert EfficientNetV2.arch_settings == mmpretrain_backbone('EfficientNetV2').arch_settings
    from mmpretrain.models.backbones.efficientnet import model_scaling as theirs_scaling
    for arch, setting in EfficientNet.arch_settings.items():
        rows = EfficientNet.layer_settings['b' if arch == 'l2' else arch[:1]]
        assert model_scaling(rows, setting) == theirs_scaling(rows, setting), arch


@pytest.mark.parametrize('kwargs', [dict(arch='b0', out_indices=(0, 2, 6)),
                                    dict(arch='b1', conv_cfg=None, out_indices=(3, 6)),
                                    dict(arch='es', act_cfg=dict(type='ReLU'),
                                         out_indices=(1, 2, 6))])
def test_efficientnet_mmpretrain_parity(kwargs, tmp_path):
    theirs = mmpretrain_backbone('EfficientNet')(**kwargs)
    assert_mmpretrain_parity(theirs, lambda init_cfg: EfficientNet(**kwargs, init_cfg=init_cfg),
                             tmp_path, SIZES, randomize=perturb_, batch=1)


@pytest.mark.parametrize('kwargs', [dict(arch='b0', out_indices=(1, 4, 7)),
                                    dict(arch='b1', out_indices=(-1, ))])
def test_efficientnet_v2_mmpretrain_parity(kwargs, tmp_path):
    theirs = mmpretrain_backbone('EfficientNetV2')(**kwargs)
    assert_mmpretrain_parity(theirs, lambda init_cfg: EfficientNetV2(**kwargs,
                                                                     init_cfg=init_cfg),
                             tmp_path, SIZES, randomize=perturb_, batch=1)


@pytest.mark.parametrize('name,build', [
    ('efficientnet_b0', lambda: EfficientNet('b0', conv_cfg=None, norm_cfg=BN5,
                                             out_indices=(2, 6))),
    ('tf_efficientnet_b0', lambda: EfficientNet('b0', out_indices=(1, 3, 4, 5, 6))),
    ('tf_efficientnet_es', lambda: EfficientNet('es', act_cfg=dict(type='ReLU'))),
    ('tf_efficientnetv2_b0', lambda: EfficientNetV2('b0', out_indices=(2, -1))),
])
def test_timm_weights_give_timms_features(name, build):
    model, converted = timm_converted(name, is_timm_efficientnet, convert_timm_efficientnet,
                                      randomize=perturb_)
    ours = build().eval()
    target = {k: v.shape for k, v in ours.state_dict().items()}
    assert convert_timm_efficientnet(model.state_dict(), target=target).keys() == \
        converted.keys()
    ours.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        expected, got = model.forward_features(x), ours(x)[-1]
    assert_outputs_close([expected], [got])
    back = revert_timm_efficientnet(ours.state_dict())
    assert set(back) == {k for k in model.state_dict() if not k.startswith('classifier')}


def test_timm_networks_without_counterpart_are_refused():
    timm = pytest.importorskip('timm', reason='timm is needed for the converter test')
    with torch.device('meta'):
        lite = timm.create_model('efficientnet_lite0').state_dict()
    with pytest.raises(KeyError, match='efficientnet_lite'):
        convert_timm_efficientnet(lite)


def test_metadata_truncation_and_out_indices():
    model = EfficientNet('b0', out_indices=(4, 2))
    assert model.out_channels == (112, 24) and model.out_strides == (16, 4)
    assert model.out_names == ('stage4', 'stage2') and len(model.layers) == 5
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in out] == [112, 24] and out[0].shape[-1] == 4
    v2 = EfficientNetV2('s', out_indices=(-1, 0))
    assert v2.out_indices == (7, 0) and v2.out_channels == (1280, 24)
    assert v2.out_strides == (32, 2)


@pytest.mark.parametrize('cls,kwargs,error,match', [
    (EfficientNet, dict(arch='b9'), ValueError, 'arch'),
    (EfficientNet, dict(out_indices=(7, )), ValueError, 'out_indices'),
    (EfficientNet, dict(frozen_stages=8), ValueError, 'frozen_stages'),
    (EfficientNet, dict(drop_path_rate=1.0), ValueError, 'drop_path_rate'),
    (EfficientNet, dict(edge_residual_stride='conv3'), ValueError, 'edge_residual_stride'),
    (EfficientNet, dict(with_cp=None), TypeError, 'with_cp'),
    (EfficientNetV2, dict(arch='xs'), ValueError, 'arch'),
    (EfficientNetV2, dict(out_indices=(8, )), ValueError, 'out_indices'),
    (EfficientNetV2, dict(in_channels=-1), ValueError, 'in_channels'),
    (EfficientNetV2, dict(norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
])
def test_bad_arguments_are_refused(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


@pytest.mark.parametrize('cls,arch', [(EfficientNet, 'b0'), (EfficientNetV2, 'b0')])
@pytest.mark.parametrize('frozen', [0, 1, 3])
def test_frozen_stages_as_mmpretrain(cls, arch, frozen):
    """``frozen_stages=k`` freezes ``layers[0..k-1]`` (0: nothing), as mmpretrain."""
    ours = cls(arch=arch, frozen_stages=frozen, out_indices=(4, ))
    theirs = mmpretrain_backbone(cls.__name__)(arch=arch, frozen_stages=frozen,
                                               out_indices=(4, ))
    ours.train()
    theirs.train()
    flags = {n: p.requires_grad for n, p in ours.named_parameters()}
    assert flags == {n: p.requires_grad for n, p in theirs.named_parameters() if n in flags}
    modes = {n: m.training for n, m in ours.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert modes == {n: m.training for n, m in theirs.named_modules() if n in modes}
    assert sum(not v for v in flags.values()) == sum(
        p.numel() > 0 for p in ours.layers[:frozen].parameters())


@pytest.mark.parametrize('build', [
    lambda **k: EfficientNet('b0', out_indices=(2, 4), drop_path_rate=0.0, **k),
    lambda **k: EfficientNetV2('b0', out_indices=(1, 3), **k)])
def test_training_contract(build):
    assert_norm_eval_keeps_bn_statistics(build(norm_eval=True))
    assert_every_parameter_gets_gradients(build())
    torch.manual_seed(0)
    assert_with_cp_matches(build().train(), build(with_cp=True).train())
    model = build()
    perturb_(model)
    assert_fuse_keeps_outputs(model)


@pytest.mark.parametrize('model', [EfficientNet('b0', out_indices=(1, 6)),
                                   EfficientNetV2('b0', out_indices=(0, 7))])
def test_empty_batch_odd_sizes_and_input_checks(model):
    model.eval()
    with torch.no_grad():
        empty = model(torch.zeros(0, 3, 45, 33))
        one = model(torch.zeros(1, 3, 45, 33))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    # TF 'same' padding: every side is ceil(side / stride)
    assert one[-1].shape[-2:] == (2, 2)
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.int64))
    assert any(isinstance(m, Conv2dSame) for m in model.modules())


def test_get_layer_depth():
    model = EfficientNet('b0')
    assert model.get_layer_depth('backbone.layers.0.conv.weight', 'backbone.') == (0, 8)
    assert model.get_layer_depth('backbone.layers.4.2.se.conv1.conv.bias', 'backbone.') == (4, 8)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (7, 8)
    v2 = EfficientNetV2('s')
    assert v2.get_layer_depth('layers.7.bn.weight') == (7, 9)
    assert all(v2.get_layer_depth(n)[0] < 8 for n, _ in v2.named_parameters())


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2.contract import Detectron2Backbone
    adapted = Detectron2Backbone(EfficientNetV2('b0', out_indices=(2, 3, 5, -1)))
    shapes = adapted.output_shape()
    assert [(s.channels, s.stride) for s in shapes.values()] == [(32, 4), (48, 8), (112, 16),
                                                                 (1280, 32)]


@pytest.mark.parametrize('path', family_configs('efficientnet')[:2]
                         + family_configs('efficientnet')[-3:] + family_configs('efficientnet_v2')[:2])
def test_shipped_configs_build_and_run(path):
    model = assert_config_builds_and_runs(path, (EfficientNet, EfficientNetV2), size=64)
    assert model.out_strides == (4, 8, 16, 32)


def test_every_shipped_config_builds_on_meta():
    from mmbackbones import build_backbone_from_config
    paths = family_configs('efficientnet') + family_configs('efficientnet_v2')
    assert len(paths) == 21
    for path in paths:
        with torch.device('meta'):
            assert build_backbone_from_config(path).out_strides == (4, 8, 16, 32), path


def test_registry_builds_mmcls_and_mmdet_types():
    with torch.device('meta'):
        assert type(build_backbone(dict(type='mmcls.EfficientNet'))) is EfficientNet
        assert type(build_backbone(dict(type='mmcls.EfficientNetV2', arch='b0'))) is \
            EfficientNetV2
        det = build_backbone(dict(type='mmbackbones.mmdet.EfficientNet', arch='es'))
    assert det.layers[1][0].conv2.conv.stride == (1, 1)
    assert det.layers[2][0].conv2.conv.stride == (2, 2)  # mmdet's edge blocks stride in conv2


def test_onnx_export_with_same_padding_at_dynamic_sides(tmp_path):
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    result = run_cli('export', 'efficientnetv2-b0', '-o', tmp_path / 'e.onnx', '--input-size',
                     '32', '32', '--dynamic', '--json')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report['verify']) == 2 and report['max_abs_diff'] < 1e-4


def test_show_draws_the_feature_maps(tmp_path):
    import os

    from mmbackbones.cli import main
    out = tmp_path / 'eff.png'
    image = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))), 'demo', 'demo.png')
    assert main(['show', 'efficientnet-b0', image, '-o', str(out), '--input-size', '64', '64',
                 '--panel-size', '32']) == 0
    assert out.stat().st_size > 0
