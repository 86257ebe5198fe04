"""The detectron2/detrex-style ResNet API: BasicStem, make_default_stages/make_stage,
Detectron2ResNet (dict output, output_shape, freeze_at), and its equivalence with ResNet."""
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones import build_backbone
from mmbackbones.models.backbones.resnet import (BasicStem, Detectron2ResNet, ResNet, ResNeXt,
                                                 make_default_stages, make_stage)
from mmbackbones.models.layers import FrozenBatchNorm2d
from mmbackbones.models.layers.resnet_blocks import BasicBlock, Bottleneck, ResLayer

FEATURES = ['res2', 'res3', 'res4', 'res5']


def randomize_(model, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (_BatchNorm, FrozenBatchNorm2d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model


def d2_resnet(depth=50, norm='FrozenBN', out_features=FEATURES, freeze_at=0, **stage_kwargs):
    return Detectron2ResNet(
        stem=BasicStem(in_channels=3, out_channels=64, norm=norm),
        stages=make_default_stages(depth=depth, norm=norm, **stage_kwargs),
        out_features=out_features, freeze_at=freeze_at)


def test_dict_output_and_output_shape():
    model = d2_resnet(depth=18).eval()
    shapes = model.output_shape()
    assert list(shapes) == FEATURES
    assert [(s.channels, s.stride) for s in shapes.values()] == \
        [(64, 4), (128, 8), (256, 16), (512, 32)]
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, dict) and list(out) == FEATURES
    for name, feat in out.items():
        assert feat.shape == (2, shapes[name].channels, 64 // shapes[name].stride,
                              64 // shapes[name].stride)


def test_stem_output_order_and_unbuilt_stages():
    model = d2_resnet(depth=18, out_features=['res3', 'stem']).eval()
    assert model.stage_names == ['res2', 'res3'] and not hasattr(model, 'res4')
    out = model(torch.randn(1, 3, 32, 32))
    assert list(out) == ['res3', 'stem'] and out['stem'].shape == (1, 64, 8, 8)
    assert model.out_strides == (8, 4)


def test_default_out_features_is_the_last_stage():
    model = Detectron2ResNet(stem=dict(norm='BN'), stages=dict(depth=18, norm='BN'))
    assert model.out_names == ('res5',)


@pytest.mark.parametrize('freeze_at', [0, 1, 2, 3])
def test_freeze_at_follows_detectron2(freeze_at):
    model = d2_resnet(depth=18, norm='BN', freeze_at=freeze_at)
    model.train()
    parts = [model.stem, model.res2, model.res3, model.res4, model.res5]
    for i, part in enumerate(parts):
        frozen = i < freeze_at  # 1: stem, 2: stem + res2, ...
        assert all(p.requires_grad != frozen for p in part.parameters()), (freeze_at, i)
        assert all(m.training != frozen for m in part.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('stage_kwargs,resnet_kwargs,cls', [
    (dict(depth=50, stride_in_1x1=True), dict(depth=50, style='caffe'), ResNet),
    (dict(depth=50, res5_dilation=2), dict(depth=50, strides=(1, 2, 2, 1),
                                           dilations=(1, 1, 1, 2)), ResNet),
    (dict(depth=18), dict(depth=18), ResNet),
    (dict(depth=50, num_groups=32, width_per_group=4), dict(depth=50), ResNeXt),
])
def test_same_network_as_resnet_and_loads_mmpretrain_names(stage_kwargs, resnet_kwargs, cls):
    ref = randomize_(cls(norm_cfg=dict(type='FrozenBN'), **resnet_kwargs)).eval()
    model = d2_resnet(**stage_kwargs)
    assert sum(p.numel() for p in model.state_dict().values()) == \
        sum(p.numel() for p in ref.state_dict().values())
    # mmpretrain names (conv1, bn1, layer1..) are renamed on load to stem.* / res2..
    missing, unexpected = model.load_state_dict(ref.state_dict(), strict=True)
    assert not missing and not unexpected
    assert torch.equal(model.state_dict()['res3.0.conv1.weight'],
                       ref.state_dict()['layer2.0.conv1.weight'])
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert model.out_strides == ref.out_strides and model.out_channels == ref.out_channels
    for e, name in zip(expected, FEATURES):
        torch.testing.assert_close(got[name], e, rtol=1e-5, atol=1e-5)


def test_parameter_names():
    keys = list(d2_resnet(depth=50, norm='BN').state_dict())
    for key in ('stem.conv1.weight', 'stem.bn1.running_var', 'res2.0.conv1.weight',
                'res2.0.bn3.weight', 'res2.0.downsample.0.weight', 'res2.0.downsample.1.bias',
                'res5.2.conv3.weight'):
        assert key in keys


def test_make_stage_spellings():
    stages = make_stage(depth=50, stride_in_1x1=False, norm='FrozenBN', res5_dilation=2)
    assert len(stages) == 4 and all(isinstance(s, ResLayer) for s in stages)
    assert stages[3].stride == 1 and stages[3][0].conv2.dilation == (2, 2)
    assert Detectron2ResNet.make_default_stages is make_default_stages
    one = Detectron2ResNet.make_stage('BottleneckBlock', 3, in_channels=64, out_channels=256,
                                      stride_per_block=[1, 1, 1], bottleneck_channels=64,
                                      stride_in_1x1=True, norm='GN')
    assert isinstance(one[0], Bottleneck) and one[0].mid_channels == 64
    assert isinstance(one[0].norm1, nn.GroupNorm) and one[0].norm1.num_groups == 32
    basic = Detectron2ResNet.make_stage(BasicBlock, 2, in_channels=64, out_channels=128,
                                        stride=2, norm='BN')
    assert basic[0].stride == 2 and basic[0].downsample is not None


def test_config_dicts_and_registry():
    model = build_backbone(dict(type='Detectron2ResNet',
                                stem=dict(type='BasicStem', in_channels=3, out_channels=64,
                                          norm='FrozenBN'),
                                stages=dict(depth=18, stride_in_1x1=False, norm='FrozenBN'),
                                out_features=['res4', 'res5'], freeze_at=1))
    assert isinstance(model, Detectron2ResNet) and model.out_channels == (256, 512)
    assert isinstance(model.stem.bn1, FrozenBatchNorm2d)
    assert not model.stem.conv1.weight.requires_grad and model.res2[0].conv1.weight.requires_grad


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(out_features=['res6']), ValueError, r"out_features must be one of 'stem', 'res2'"),
    (dict(out_features='res5'), TypeError, r'out_features must be a non-empty list'),
    (dict(out_features=['res5', 'res5']), ValueError, r'out_features repeats a name'),
    (dict(freeze_at=6), ValueError, r'freeze_at must be an int in 0\.\.5'),
    (dict(num_classes=1000), ValueError, r'num_classes must be None'),
    (dict(stem=dict(norm='LN')), ValueError, r"norm must be one of 'FrozenBN', 'BN'"),
    (dict(stages=dict(depth=26)), ValueError, r'depth must be one of 18, 34, 50, 101, 152'),
    (dict(stages=dict(depth=50, res5_dilation=4)), ValueError, r'res5_dilation must be one of'),
    (dict(stem=dict(type='DeepLabStem')), ValueError, r"expected type='BasicStem'"),
    (dict(stages=[nn.Conv2d(3, 3, 1)], out_features=['res2']), TypeError,
     r'a stage must be a Sequential of blocks'),
])
def test_bad_arguments(kwargs, error, match):
    kwargs = dict(dict(stages=dict(depth=18), out_features=FEATURES), **kwargs)
    with pytest.raises(error, match=match):
        Detectron2ResNet(**kwargs)


def test_fuse_detectron2_model():
    model = randomize_(d2_resnet(depth=18)).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        model.fuse()
    assert model.num_fused_norms == 1 + 16 + 3
    with torch.no_grad():
        got = model(x)
    for name, feat in got.items():
        torch.testing.assert_close(feat, expected[name], rtol=1e-4,
                                   atol=1e-4 * float(expected[name].abs().max()))
