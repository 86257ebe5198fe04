"""The detectron2/detrex ResNet front end (``mmbackbones.integrations.detectron2``, and
``mmbackbones.detrex`` for detrex's names): detectron2's parameter names, dict output,
output_shape, freeze_at, the same network as the OpenMMLab ``ResNet``, checkpoint renames and
the refusal of half-matching checkpoints. Runs without detectron2 (tests/detectron2/ compares
with the real library)."""
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters.detectron2_resnet import convert_detectron2_resnet
from mmbackbones.checkpoint.state import CheckpointMismatchError
from mmbackbones.integrations.detectron2 import (BasicBlock, BasicStem, BottleneckBlock,
                                                 Detectron2ResNet, make_default_stages,
                                                 make_resnet_stages, make_stage)
from mmbackbones.models.backbones.resnet import ResNet, ResNeXt
from mmbackbones.models.layers import FrozenBatchNorm2d

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
        stages=make_resnet_stages(depth=depth, norm=norm, **stage_kwargs),
        out_features=out_features, freeze_at=freeze_at)


def test_detectron2_parameter_names():
    keys = list(d2_resnet(depth=50, norm='BN').state_dict())
    for key in ('stem.conv1.weight', 'stem.conv1.norm.running_var', 'res2.0.conv1.weight',
                'res2.0.conv3.norm.weight', 'res2.0.shortcut.weight', 'res2.0.shortcut.norm.bias',
                'res5.2.conv3.weight'):
        assert key in keys
    assert not any('bn' in k or 'downsample' in k or 'layer' in k for k in keys)
    assert 'res2.1.shortcut.weight' not in keys  # only where channels change, as detectron2


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


@pytest.mark.parametrize('freeze_at', [-1, 0, 1, 2, 3, 9])
def test_freeze_at_follows_detectron2(freeze_at):
    model = d2_resnet(depth=18, norm='BN', freeze_at=freeze_at)
    model.train()
    parts = [model.stem, model.res2, model.res3, model.res4, model.res5]
    for i, part in enumerate(parts):
        frozen = i < freeze_at  # 1: stem, 2: stem + res2, ...
        assert all(p.requires_grad != frozen for p in part.parameters()), (freeze_at, i)
        norms = [m for m in part.modules() if isinstance(m, (_BatchNorm, FrozenBatchNorm2d))]
        # detectron2 converts the BatchNorms of frozen blocks to FrozenBatchNorm2d
        assert all(isinstance(m, FrozenBatchNorm2d) == frozen for m in norms), (freeze_at, i)


@pytest.mark.parametrize('stage_kwargs,resnet_kwargs,cls', [
    (dict(depth=50, stride_in_1x1=True), dict(depth=50, style='caffe'), ResNet),
    (dict(depth=50, res5_dilation=2), dict(depth=50, strides=(1, 2, 2, 1),
                                           dilations=(1, 1, 1, 2)), ResNet),
    (dict(depth=18), dict(depth=18), ResNet),
    (dict(depth=50, num_groups=32, width_per_group=4), dict(depth=50), ResNeXt),
])
def test_same_network_as_resnet_and_loads_mmpretrain_names(stage_kwargs, resnet_kwargs, cls):
    ref = randomize_(cls(norm_cfg=dict(type='FrozenBN'), out_indices=(0, 1, 2, 3),
                         **resnet_kwargs)).eval()
    model = d2_resnet(**stage_kwargs)
    assert sum(p.numel() for p in model.state_dict().values()) == \
        sum(p.numel() for p in ref.state_dict().values())
    # mmpretrain/torchvision names (conv1, bn1, layer1..) are renamed on load
    missing, unexpected = model.load_state_dict(ref.state_dict(), strict=True)
    assert not missing and not unexpected
    assert torch.equal(model.state_dict()['res3.0.conv1.weight'],
                       ref.state_dict()['layer2.0.conv1.weight'])
    # ... and the detectron2 names convert back to the OpenMMLab ResNet's
    back = convert_detectron2_resnet(model.state_dict())
    assert set(back) == set(ref.state_dict())
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert model.out_strides == ref.out_strides and model.out_channels == ref.out_channels
    for e, name in zip(expected, FEATURES):
        torch.testing.assert_close(got[name], e, rtol=1e-5, atol=1e-5)


def test_half_matching_checkpoint_is_refused():
    """Conv names that match with norms under other names (the old stem.bn1 layout) would
    leave every norm at init: refused, nothing loaded."""
    model = d2_resnet(depth=18)
    state = {k.replace('conv1.norm', 'bn1').replace('conv2.norm', 'bn2'): v.clone() + 1
             for k, v in model.state_dict().items()}
    before = model.stem.conv1.weight.clone()
    with pytest.raises(CheckpointMismatchError, match=r'not the norms of .* stem\.conv1\.norm'):
        model.load_state_dict(state, strict=False)
    assert torch.equal(model.stem.conv1.weight, before)


def test_make_stage_make_default_stages_detectron2_meanings():
    one = make_stage(BottleneckBlock, 3, in_channels=64, out_channels=256,
                     bottleneck_channels=64, stride_per_block=[2, 1, 1], stride_in_1x1=True,
                     norm='GN')
    assert len(one) == 3 and all(isinstance(b, BottleneckBlock) for b in one)
    assert one[0].stride == 2 and one[0].conv1.stride == (2, 2) and one[1].stride == 1
    assert isinstance(one[0].conv1.norm, nn.GroupNorm) and one[0].conv1.norm.num_groups == 32
    basic = make_stage('BasicBlock', 2, in_channels=64, out_channels=128, stride=2, norm='BN')
    assert isinstance(basic[0], BasicBlock) and basic[0].shortcut is not None
    stages = make_default_stages(50, norm='FrozenBN')
    assert [len(s) for s in stages] == [3, 4, 6, 3] and stages[3][0].out_channels == 2048
    assert Detectron2ResNet.make_stage is make_stage
    assert Detectron2ResNet.make_default_stages is make_default_stages
    dc5 = make_resnet_stages(depth=50, res5_dilation=2)
    assert dc5[3][0].stride == 1 and dc5[3][0].conv2.dilation == (2, 2)


def test_detrex_module_names():
    from mmbackbones import detrex
    assert detrex.make_stage is make_resnet_stages  # detrex's module-level make_stage
    assert issubclass(detrex.ResNet, Detectron2ResNet)
    model = detrex.ResNet(stem=detrex.BasicStem(in_channels=3, out_channels=64, norm='FrozenBN'),
                          stages=detrex.ResNet.make_default_stages(depth=18, norm='FrozenBN'),
                          out_features=['res4', 'res5'], freeze_at=1)
    assert list(model.output_shape()) == ['res4', 'res5']


def test_config_dicts_and_registry():
    model = build_backbone(dict(type='Detectron2ResNet',
                                stem=dict(type='BasicStem', in_channels=3, out_channels=64,
                                          norm='FrozenBN'),
                                stages=dict(depth=18, stride_in_1x1=False, norm='FrozenBN'),
                                out_features=['res4', 'res5'], freeze_at=1))
    assert isinstance(model, Detectron2ResNet) and model.out_channels == (256, 512)
    assert isinstance(model.stem.conv1.norm, FrozenBatchNorm2d)
    assert not model.stem.conv1.weight.requires_grad and model.res2[0].conv1.weight.requires_grad


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(out_features=['res6']), ValueError, r"out_features must be one of 'stem', 'res2'"),
    (dict(out_features='res5'), TypeError, r'out_features must be a non-empty list'),
    (dict(out_features=['res5', 'res5']), ValueError, r'out_features repeats a name'),
    (dict(freeze_at=True), TypeError, r'freeze_at must be an int'),
    (dict(freeze_at=1.0), TypeError, r'freeze_at must be an int'),
    (dict(num_classes=1000), ValueError, r'num_classes must be None'),
    (dict(stem=dict(norm='LN')), ValueError, r"norm must be one of 'FrozenBN', 'BN'"),
    (dict(stages=dict(depth=26)), ValueError, r'depth must be one of 18, 34, 50, 101, 152'),
    (dict(stages=dict(depth=50, res5_dilation=4)), ValueError, r'res5_dilation must be one of'),
    (dict(stages=dict(depth=50, deform_on_per_stage=[False, True, True, True])), ValueError,
     r'deformable stages need detectron2'),
    (dict(stem=dict(type='DeepLabStem')), ValueError, r"expected type='BasicStem'"),
    (dict(stages=[[nn.Conv2d(3, 3, 1)]], out_features=['res2']), TypeError,
     r'stages\[0\] must be a non-empty list of blocks'),
])
def test_bad_arguments(kwargs, error, match):
    kwargs = dict(dict(stages=dict(depth=18), out_features=FEATURES), **kwargs)
    with pytest.raises(error, match=match):
        Detectron2ResNet(**kwargs)


def test_bad_make_stage_arguments():
    with pytest.raises(ValueError, match=r'stride_per_block must have one value per block'):
        make_stage(BasicBlock, 2, in_channels=8, out_channels=8, stride_per_block=[2])
    with pytest.raises(ValueError, match=r'block_class must be one of'):
        make_stage('Bottle', 2, in_channels=8, out_channels=8)
    with pytest.raises(ValueError, match=r'make_default_stages fixes in_channels'):
        make_default_stages(50, in_channels=32)


def test_caffe2_names_load_and_convert():
    """MSRA caffe2 names (res2_0_branch2a_w, res_conv1_bn_s, affine-only norms) load into the
    detectron2-style ResNet and convert for the OpenMMLab one; momentum/fc blobs are dropped."""
    from mmbackbones.checkpoint.converters.detectron2_resnet import rename_caffe2_to_d2
    names = {'conv1_w': 'stem.conv1.weight', 'res_conv1_bn_s': 'stem.conv1.norm.weight',
             'res_conv1_bn_b': 'stem.conv1.norm.bias',
             'res2_0_branch1_w': 'res2.0.shortcut.weight',
             'res2_0_branch1_bn_riv': 'res2.0.shortcut.norm.running_var',
             'res3_1_branch2c_bn_b': 'res3.1.conv3.norm.bias',
             'res2_0_branch2a_w_momentum': None, 'fc1000_w': None}
    assert rename_caffe2_to_d2(names) == names
    model = d2_resnet(depth=18)
    inverse = {}
    for key in model.state_dict():
        if key.endswith(('running_mean', 'running_var')):
            continue
        stage, rest = key.split('.', 1)
        if stage == 'stem':
            inverse[key] = 'conv1_w' if rest == 'conv1.weight' else \
                'res_conv1_bn_' + {'norm.weight': 's', 'norm.bias': 'b'}[rest[len('conv1.'):]]
            continue
        block, layer, leaf = rest.split('.', 2)
        branch = {'conv1': 'branch2a', 'conv2': 'branch2b', 'shortcut': 'branch1'}[layer]
        leaf = {'weight': 'w', 'norm.weight': 'bn_s', 'norm.bias': 'bn_b'}[leaf]
        inverse[key] = f'{stage}_{block}_{branch}_{leaf}'
    source = randomize_(d2_resnet(depth=18), seed=4)
    with torch.no_grad():
        for m in source.modules():
            if isinstance(m, FrozenBatchNorm2d):
                m.running_mean.zero_(), m.running_var.fill_(1)
    blobs = {inverse[k]: v.clone() for k, v in source.state_dict().items() if k in inverse}
    blobs['fc1000_w'] = torch.zeros(3)
    model.load_state_dict(blobs, strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    mm = ResNet(depth=18, norm_cfg=dict(type='FrozenBN'))
    assert not mm.load_state_dict(convert_detectron2_resnet(blobs), strict=True).missing_keys
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(mm.eval()(x)[-1], source.eval()(x)['res5'])


@pytest.mark.parametrize('depth,out_features', [(18, ['stem', 'res3']), (50, FEATURES)])
def test_torch_jit_script_computes_the_same(depth, out_features):
    """As detectron2's ResNet, ours compiles with torch.jit.script (issue: super().forward and
    mmengine's is_init stopped it); the eager model keeps its modules and fast paths."""
    model = d2_resnet(depth=depth, out_features=out_features, freeze_at=2).eval()
    shortcut_class = type(model.res3[0].shortcut)
    scripted = torch.jit.script(model)
    assert type(model.res3[0].shortcut) is shortcut_class
    assert len(list(scripted.parameters())) == len(list(model.parameters()))
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        eager, got = model(x), scripted(x)
    assert list(got) == list(eager) == out_features
    for name in out_features:
        torch.testing.assert_close(got[name], eager[name], rtol=1e-4, atol=1e-4)
