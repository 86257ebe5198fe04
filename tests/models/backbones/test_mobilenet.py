"""MobileNetV2 / MobileNetV3: mmpretrain parity, timm through the converter, the contract
(metadata, out_indices, truncated build, freezing, norm_eval, with_cp, empty batch, dtype,
get_layer_depth, fuse, detectron2 adapter), configs, ONNX."""
import copy
import json
import os

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.mmdet_mobilenet_v2 import (
    convert_mmdet_mobilenet_v2, is_mmdet_mobilenet_v2, revert_mmdet_mobilenet_v2)
from mmbackbones.checkpoint.converters.timm_efficientnet import (convert_timm_efficientnet,
                                                                  revert_timm_efficientnet)
from mmbackbones.models.backbones.mobilenet_v2 import MobileNetV2
from mmbackbones.models.backbones.mobilenet_v3 import MobileNetV3
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_fuse_keeps_outputs,
                          assert_mmpretrain_parity, assert_norm_eval_keeps_bn_statistics,
                          assert_outputs_close, assert_with_cp_matches, family_configs,
                          mmpretrain_backbone, perturb_, timm_converted)

BN5 = dict(type='BN', eps=1e-5)
SIZES = [(32, 32), (33, 45)]


# ----- arch tables and mmpretrain parity ---------------------------------------------------------
def test_arch_table_is_mmpretrains():
    assert MobileNetV2.arch_settings == mmpretrain_backbone('MobileNetV2').arch_settings
    assert MobileNetV3.arch_settings == mmpretrain_backbone('MobileNetV3').arch_settings


@pytest.mark.parametrize('kwargs', [dict(out_indices=(0, 2, 7)),
                                    dict(widen_factor=0.5, out_indices=(1, 7)),
                                    dict(widen_factor=1.4, act_cfg=dict(type='ReLU'))])
def test_mobilenet_v2_mmpretrain_parity(kwargs, tmp_path):
    theirs = mmpretrain_backbone('MobileNetV2')(**kwargs)
    ours = assert_mmpretrain_parity(theirs, lambda init_cfg: MobileNetV2(**kwargs,
                                                                         init_cfg=init_cfg),
                                    tmp_path, SIZES, randomize=perturb_)
    assert ours.out_indices == tuple(kwargs.get('out_indices', (7, )))


@pytest.mark.parametrize('arch,out_indices', [('small', (0, 3, 12)), ('small_075', (12, )),
                                              ('small_050', (5, 9)), ('large', (2, 8, 16))])
def test_mobilenet_v3_mmpretrain_parity(arch, out_indices, tmp_path):
    full = tuple(range(len(MobileNetV3.arch_settings[arch]) + 2))
    theirs = mmpretrain_backbone('MobileNetV3')(arch=arch, out_indices=full)
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: MobileNetV3(arch=arch, out_indices=full, init_cfg=init_cfg),
        tmp_path, SIZES, randomize=perturb_)


def test_truncated_model_loads_a_full_checkpoint(tmp_path):
    """Nothing after the last output is built; mmpretrain's full checkpoint still loads."""
    theirs = mmpretrain_backbone('MobileNetV3')(arch='large', out_indices=(16, ))
    perturb_(theirs)
    from tests.parity import save_as_backbone
    path = save_as_backbone(theirs, tmp_path / 'full.pth')
    ours = MobileNetV3(arch='large', out_indices=(3, 6),
                       init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone'))
    assert not any(k.startswith(('layer7.', 'layer16.')) for k in ours.state_dict())
    ours.init_weights()
    torch.testing.assert_close(ours.layer6.linear_conv.conv.weight,
                               theirs.layer6.linear_conv.conv.weight)
    truncated = MobileNetV2(out_indices=(2, ))
    assert not hasattr(truncated, 'layer4') and not hasattr(truncated, 'conv2')


# ----- timm --------------------------------------------------------------------------------------
@pytest.mark.parametrize('name,build', [
    ('mobilenetv2_050', lambda: MobileNetV2(widen_factor=0.5, out_indices=(1, 2, 4, 7))),
    ('mobilenetv3_small_100', lambda: MobileNetV3('small', norm_cfg=BN5, out_indices=(1, 12))),
    ('tf_mobilenetv3_small_075', lambda: MobileNetV3('small_075', tf_padding=True,
                                                     out_indices=(3, 12))),
])
def test_timm_weights_give_timms_features(name, build):
    """timm's network, converted (both ways): equal final features (``forward_features``),
    BN eps and TF padding as the arch says."""
    model, converted = timm_converted(name, lambda sd: True, convert_timm_efficientnet,
                                      randomize=perturb_)
    ours = build().eval()
    ours.load_state_dict(converted, strict=False)
    assert set(ours.state_dict()) <= set(converted)
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        expected, got = model.forward_features(x), ours(x)[-1]
    assert_outputs_close([expected], [got])
    back = revert_timm_efficientnet(ours.state_dict())
    timm_keys = {k for k in model.state_dict() if not k.startswith('classifier')
                 and not (k.startswith('conv_head') and 'mobilenetv3' in name)}
    assert set(back) == timm_keys


def test_timm_file_loads_through_init_cfg(tmp_path):
    timm = pytest.importorskip('timm', reason='timm is needed for the timm parity test')
    from safetensors.torch import save_file
    source = timm.create_model('mobilenetv3_large_100')
    perturb_(source)
    path = str(tmp_path / 'timm.safetensors')
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    ours = MobileNetV3('large', norm_cfg=BN5, init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_close([source.eval().forward_features(x)], ours.eval()(x))


def test_mmdet_layout_converts_both_ways():
    ours = MobileNetV2()
    mmdet = revert_mmdet_mobilenet_v2(ours.state_dict())
    assert 'layer1.0.depthwise_conv.conv.weight' in mmdet
    assert 'layer2.0.expand_conv.bn.running_var' in mmdet
    assert is_mmdet_mobilenet_v2(mmdet) and not is_mmdet_mobilenet_v2(ours.state_dict())
    assert list(convert_mmdet_mobilenet_v2(mmdet)) == list(ours.state_dict())
    converted, name = convert_state_dict(mmdet, 'auto',
                                         {k: v.shape for k, v in ours.state_dict().items()})
    assert name == 'mmdet_mobilenet_v2' and list(converted) == list(ours.state_dict())
    ours.load_state_dict(mmdet)  # the load hook converts


# ----- contract ----------------------------------------------------------------------------------
def test_metadata_before_forward_and_out_indices_order():
    model = MobileNetV2(out_indices=(7, 1, -4))
    assert model.out_indices == (7, 1, 4)
    assert model.out_channels == (1280, 24, 96) and model.out_strides == (32, 4, 16)
    assert model.out_names == ('conv2', 'layer2', 'layer5')
    assert set(model.output_shape()) == {'conv2', 'layer2', 'layer5'}
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in out] == [1280, 24, 96]
    assert [64 // o.shape[-1] for o in out] == [32, 4, 16]
    v3 = MobileNetV3('large', out_indices=(0, 3, 16), output_stride=8)
    assert v3.out_strides == (2, 4, 8)
    with torch.no_grad():
        assert [64 // o.shape[-1] for o in v3.eval()(torch.randn(1, 3, 64, 64))] == [2, 4, 8]


@pytest.mark.parametrize('cls,kwargs,error,match', [
    (MobileNetV2, dict(out_indices=(8, )), ValueError, 'out_indices'),
    (MobileNetV2, dict(out_indices=(1, 1)), ValueError, 'repeat'),
    (MobileNetV2, dict(frozen_stages=8), ValueError, 'frozen_stages'),  # mmpretrain's range
    (MobileNetV3, dict(frozen_stages=13), ValueError, 'frozen_stages'),
    (MobileNetV2, dict(widen_factor=0), ValueError, 'widen_factor'),
    (MobileNetV2, dict(widen_factor='1'), TypeError, 'widen_factor'),
    (MobileNetV2, dict(strides=(1, 2)), ValueError, 'strides'),
    (MobileNetV2, dict(dilations=(1, 1, 1, 1, 1, 1, 0)), ValueError, 'dilations'),
    (MobileNetV2, dict(out_indices=(3, ), built_stages=2), ValueError, 'built_stages'),
    (MobileNetV2, dict(norm_eval='yes'), TypeError, 'norm_eval'),
    (MobileNetV2, dict(in_channels=0), ValueError, 'in_channels'),
    (MobileNetV3, dict(arch='tiny'), ValueError, 'arch'),
    (MobileNetV3, dict(out_indices=(13, )), ValueError, 'out_indices'),
    (MobileNetV3, dict(output_stride=4), ValueError, 'output_stride'),
    (MobileNetV3, dict(reduction_factor=0), ValueError, 'reduction_factor'),
    (MobileNetV3, dict(tf_padding=1), TypeError, 'tf_padding'),
    (MobileNetV3, dict(norm_cfg=dict(type='NoSuchNorm')), (KeyError, ValueError), 'norm_cfg'),
])
def test_bad_arguments_are_refused(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


@pytest.mark.parametrize('build,frozen', [(lambda f: MobileNetV2(frozen_stages=f), 3),
                                          (lambda f: MobileNetV2(frozen_stages=f), 0),
                                          (lambda f: MobileNetV3(frozen_stages=f), 5)])
def test_frozen_stages(build, frozen):
    assert_frozen_stages(build(frozen), frozen)


def test_frozen_stages_as_mmpretrain():
    """The same parameters lose their gradients as in mmpretrain (its stem norm keeps training
    there; here a frozen group stays in eval mode, the contract of every family)."""
    for ours, theirs in ((MobileNetV2(frozen_stages=4),
                          mmpretrain_backbone('MobileNetV2')(frozen_stages=4)),
                         (MobileNetV3(frozen_stages=6),
                          mmpretrain_backbone('MobileNetV3')(frozen_stages=6))):
        ours.train()
        theirs.train()
        assert {n: p.requires_grad for n, p in ours.named_parameters()} == \
            {n: p.requires_grad for n, p in theirs.named_parameters()}


@pytest.mark.parametrize('build', [lambda **k: MobileNetV2(out_indices=(2, 7), **k),
                                   lambda **k: MobileNetV3('small', out_indices=(1, 12), **k)])
def test_training_contract(build):
    assert_norm_eval_keeps_bn_statistics(build(norm_eval=True))
    assert_every_parameter_gets_gradients(build())
    torch.manual_seed(0)
    assert_with_cp_matches(build().train(), build(with_cp=True).train())
    model = build()
    perturb_(model)
    assert_fuse_keeps_outputs(model)


def test_built_stages_never_run_and_get_no_gradients():
    model = MobileNetV2(out_indices=(1, 2), built_stages=8)
    assert hasattr(model, 'conv2') and len(model(torch.randn(1, 3, 32, 32))) == 2
    model.train()
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    assert model.conv2.conv.weight.grad is None and model.layer3[0].conv[0].conv.weight.grad \
        is not None


@pytest.mark.parametrize('model', [MobileNetV2(out_indices=(1, 7)),
                                   MobileNetV3('small', out_indices=(0, 12))])
def test_empty_batch_odd_sizes_and_input_checks(model):
    model.eval()
    with torch.no_grad():
        empty = model(torch.zeros(0, 3, 45, 33))
        one = model(torch.zeros(1, 3, 45, 33))
    assert [e.shape[1:] for e in empty] == [o.shape[1:] for o in one]
    assert all(e.shape[0] == 0 for e in empty)
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.zeros(3, 32, 32))
    double = copy.deepcopy(model).double()
    assert double(torch.zeros(1, 3, 32, 32, dtype=torch.float64))[0].dtype == torch.float64


def test_get_layer_depth():
    v2 = MobileNetV2()
    assert v2.get_layer_depth('backbone.conv1.conv.weight', 'backbone.') == (0, 10)
    assert v2.get_layer_depth('backbone.layer3.1.conv.0.bn.bias', 'backbone.') == (3, 10)
    assert v2.get_layer_depth('backbone.conv2.bn.weight', 'backbone.') == (8, 10)
    assert v2.get_layer_depth('head.fc.weight', 'backbone.') == (9, 10)
    v3 = MobileNetV3('small')
    assert v3.get_layer_depth('layer0.conv.weight') == (0, 14)
    assert v3.get_layer_depth('layer12.bn.weight') == (12, 14)
    assert v3.get_layer_depth('head.fc.weight') == (13, 14)
    for model in (v2, v3):
        total = model.get_layer_depth('x')[1]
        assert all(model.get_layer_depth(n)[0] < total - 1 for n, _ in model.named_parameters())


def test_detectron2_adapter_output_shape():
    from mmbackbones.integrations.detectron2.contract import Detectron2Backbone
    adapted = Detectron2Backbone(MobileNetV2(out_indices=(1, 2, 4, 7)),
                                 rename={'layer2': 'res2', 'conv2': 'res5'})
    shapes = adapted.output_shape()
    assert shapes['res2'].channels == 24 and shapes['res2'].stride == 4
    assert shapes['res5'].channels == 1280 and shapes['res5'].stride == 32
    out = adapted(torch.randn(1, 3, 64, 64))
    assert out['layer5'].shape == (1, 96, 4, 4)


# ----- configs, registry, CLI --------------------------------------------------------------------
@pytest.mark.parametrize('path', family_configs('mobilenet_v2') + family_configs('mobilenet_v3'))
def test_shipped_configs_build_and_run(path):
    model = assert_config_builds_and_runs(path, (MobileNetV2, MobileNetV3), size=64)
    # the zoo's detector/segmentor backbones: dilated (d8), mmdet's YOLOv3 and mmseg's LR-ASPP
    expected = {'mobilenet-v2-d8.py': (4, 8, 8, 8), 'mobilenet-v2_mmdet-yolov3.py': (8, 16, 32),
                'mobilenet-v3-large_mmseg-lraspp.py': (2, 4, 8)}
    assert model.out_strides == expected.get(os.path.basename(path), (4, 8, 16, 32))


def test_registry_builds_mmcls_and_host_types():
    with torch.device('meta'):
        assert type(build_backbone(dict(type='mmcls.MobileNetV2'))) is MobileNetV2
        assert type(build_backbone(dict(type='mmcls.MobileNetV3', arch='large'))) is MobileNetV3
        seg = build_backbone(dict(type='mmbackbones.mmseg.MobileNetV3'))
        det = build_backbone(dict(type='mmbackbones.mmdet.MobileNetV2'))
    assert seg.out_strides == (2, 4, 8) and seg.tf_padding
    assert det.out_indices == (1, 2, 4, 7)


def test_info_and_onnx_export_at_dynamic_sides(tmp_path):
    pytest.importorskip('onnx', reason='ONNX export needs the onnx package')
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    info = run_cli('info', 'mobilenet-v3-small', '--input-size', '32', '32', '--no-flops',
                   '--json')
    assert info.returncode == 0, info.stderr
    assert '576' in info.stdout
    result = run_cli('export', 'mobilenet-v3-small', '-o', tmp_path / 'm.onnx', '--input-size',
                     '32', '32', '--dynamic', '--json', '--cfg-options',
                     'model.backbone.tf_padding=True')
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report['verify']) == 2 and report['max_abs_diff'] < 1e-4
