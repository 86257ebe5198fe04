"""ResNet / ResNetV1c / ResNetV1d / ResNeXt: mmpretrain parity, metadata, freezing, arguments,
deploy (fuse, channels_last), configs."""
import math
import os

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones import build_backbone, build_backbone_from_config
from mmbackbones.models.backbones.resnet import ResNet, ResNetV1c, ResNetV1d, ResNeXt
from mmbackbones.models.layers import FrozenBatchNorm2d
from mmbackbones.models.layers.resnet_blocks import BasicBlock, Bottleneck
from tests.parity import assert_mmpretrain_parity, family_configs

ALL = (0, 1, 2, 3)
CHANNELS = {18: (64, 128, 256, 512), 34: (64, 128, 256, 512), 50: (256, 512, 1024, 2048),
            101: (256, 512, 1024, 2048), 152: (256, 512, 1024, 2048)}


def randomize_(model: nn.Module, seed: int = 1) -> nn.Module:
    """Non-trivial norm statistics/affines so that every norm matters in a comparison."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (_BatchNorm, FrozenBatchNorm2d, nn.GroupNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                if getattr(m, 'running_mean', None) is not None:
                    m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                    m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model


def mmpretrain_backbones():
    pytest.importorskip('mmpretrain', reason='mmpretrain is needed for parity tests')
    from mmpretrain.models import backbones
    return backbones


def spatial(size: int, stride: int) -> int:
    return math.ceil(size / stride)


# ----- parity with mmpretrain --------------------------------------------------------------------
@pytest.mark.parametrize('name,kwargs', [
    ('ResNet', dict(depth=18)),
    ('ResNet', dict(depth=50)),
    ('ResNetV1c', dict(depth=50)),
    ('ResNetV1d', dict(depth=50)),
    ('ResNeXt', dict(depth=50, groups=32, width_per_group=4)),
    ('ResNet', dict(depth=34, style='caffe', strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))),
    ('ResNetV1d', dict(depth=18, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))),
    ('ResNet', dict(depth=50, style='caffe', norm_cfg=dict(type='GN', num_groups=32),
                    strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))),
])
def test_mmpretrain_checkpoint_loads_and_matches(name, kwargs, tmp_path):
    theirs = getattr(mmpretrain_backbones(), name)(out_indices=ALL, **kwargs)
    # init_weights() there: zero_init_residual must not undo a loaded checkpoint
    ours = assert_mmpretrain_parity(
        theirs, lambda init_cfg: build_backbone(dict(type=name, out_indices=ALL, **kwargs,
                                                     init_cfg=init_cfg)),
        tmp_path, [(64, 64)], randomize=randomize_, num_outputs=4, batch=1)
    assert type(ours).__module__ == 'mmbackbones.models.backbones.resnet'


def test_mmcls_scope_builds_ours():
    model = build_backbone(dict(type='mmcls.ResNet', depth=18, out_indices=(3,)))
    assert isinstance(model, ResNet) and model.out_channels == (512,)


# ----- metadata ----------------------------------------------------------------------------------
@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
def test_metadata_matches_forward_every_depth(depth):
    model = ResNet(depth=depth, out_indices=(0, 1, 2, 3)).eval()
    assert model.out_names == ('res2', 'res3', 'res4', 'res5')
    assert model.out_channels == CHANNELS[depth]
    assert model.out_strides == (4, 8, 16, 32)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (1, c, spatial(64, s), spatial(64, s))
    shapes = model.output_shape()
    assert [(v.channels, v.stride) for v in shapes.values()] == \
        list(zip(model.out_channels, model.out_strides))


@pytest.mark.parametrize('cls,kwargs,strides', [
    (ResNet, dict(depth=50, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)), (4, 8, 16, 16)),
    (ResNetV1c, dict(depth=18, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)), (4, 8, 8, 8)),
    (ResNeXt, dict(depth=50, base_channels=32, groups=8, width_per_group=4,
                   strides=(2, 1, 2, 1), dilations=(1, 2, 1, 2)), (8, 8, 16, 16)),
])
def test_metadata_matches_forward_dilated(cls, kwargs, strides):
    model = cls(out_indices=(0, 1, 2, 3), **kwargs).eval()
    assert model.out_strides == strides
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 48))
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, c, spatial(64, s), spatial(48, s))


def test_base_channels_and_expansion_change_channels():
    model = ResNet(depth=50, base_channels=16, stem_channels=32, expansion=2,
                   out_indices=(0, 1, 2, 3)).eval()
    assert model.out_channels == (32, 64, 128, 256)
    with torch.no_grad():
        assert [o.shape[1] for o in model(torch.randn(1, 3, 32, 32))] == [32, 64, 128, 256]


def test_out_indices_order_names_and_unbuilt_stages():
    model = ResNet(depth=18, out_indices=(2, 0), out_names=['c4', 'c2']).eval()
    assert model.out_names == ('c4', 'c2') and model.out_channels == (256, 64)
    assert not hasattr(model, 'layer4'), 'stages after the last output must not be built'
    assert not any(k.startswith('layer4') for k in model.state_dict())
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [256, 64]
    assert ResNet(depth=18, out_indices=-1).out_names == ('res5',)


def test_every_parameter_gets_a_gradient():
    """Nothing computed that is not returned: DDP runs without find_unused_parameters."""
    model = ResNet(depth=18, out_indices=(0, 1)).train()
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_num_stages_limits_the_network():
    model = ResNet(depth=18, num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(0, 1))
    assert model.out_names == ('res2', 'res3') and not hasattr(model, 'layer3')


# ----- freezing ----------------------------------------------------------------------------------
def _norms(module):
    return [m for m in module.modules() if isinstance(m, (_BatchNorm, FrozenBatchNorm2d))]


@pytest.mark.parametrize('cls', [ResNet, ResNetV1d])
def test_frozen_stages_stay_frozen_after_train(cls):
    model = cls(depth=18, frozen_stages=2)
    model.train()
    stem = [model.stem] if model.deep_stem else [model.conv1, model.norm1]
    frozen = stem + [model.layer1, model.layer2]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not n.training for n in _norms(module))
    for module in (model.layer3, model.layer4):
        assert all(p.requires_grad for p in module.parameters())
        assert all(n.training for n in _norms(module))
    assert model.train() is model


def test_frozen_stem_only_and_norm_eval():
    model = ResNet(depth=18, frozen_stages=0, norm_eval=True).train()
    assert not model.conv1.weight.requires_grad and not model.norm1.weight.requires_grad
    assert model.layer1[0].conv1.weight.requires_grad
    assert all(not n.training for n in _norms(model)), 'norm_eval keeps every BN in eval mode'
    assert model.layer1.training  # the rest of the network still trains (e.g. drop path)


def test_frozen_bn_norm_cfg():
    model = ResNet(depth=18, norm_cfg=dict(type='FrozenBN'))
    assert isinstance(model.norm1, FrozenBatchNorm2d) and 'bn1.running_mean' in model.state_dict()
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    randomize_(model)
    model.train()
    x = torch.randn(2, 3, 32, 32)
    first = model(x)[0]
    torch.testing.assert_close(model(x)[0], first)  # no running statistics update


def test_sync_bn_and_group_norm_names():
    bn_keys = list(ResNet(depth=18).state_dict())
    sync = ResNet(depth=18, norm_cfg=dict(type='SyncBN'))
    assert isinstance(sync.norm1, nn.SyncBatchNorm) and list(sync.state_dict()) == bn_keys
    gn = ResNet(depth=18, norm_cfg=dict(type='GN', num_groups=16))
    assert isinstance(gn.norm1, nn.GroupNorm) and 'gn1.weight' in gn.state_dict()
    assert 'layer1.0.gn2.weight' in gn.state_dict()


# ----- training features -------------------------------------------------------------------------
def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = ResNet(depth=18, out_indices=(1,), drop_path_rate=0.0)
    ckpt = ResNet(depth=18, out_indices=(1,), with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    plain(x)[0].square().sum().backward()
    grads = [p.grad.clone() for p in plain.parameters()]
    ckpt(x)[0].square().sum().backward()
    for g, p in zip(grads, ckpt.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)


def test_drop_path_rates_rise_linearly_and_vanish_in_eval():
    model = ResNet(depth=18, drop_path_rate=0.3)
    rates = [b.drop_path.drop_prob for layer in (model.layer1, model.layer2, model.layer3,
                                                 model.layer4) for b in layer
             if hasattr(b.drop_path, 'drop_prob')]
    assert len(rates) == 7 and rates == sorted(rates)  # the first block's rate is 0: Identity
    assert rates[-1] == pytest.approx(0.3)
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model(x)[-1], model(x)[-1])


def test_zero_init_residual():
    model = ResNet(depth=50, out_indices=(0,))
    model.init_weights()
    assert all(float(b.norm3.weight.detach().abs().sum()) == 0 for b in model.layer1)
    assert float(model.norm1.weight.detach().sum()) == 64  # other norms: constant 1
    plain = ResNet(depth=18, out_indices=(0,), zero_init_residual=False)
    plain.init_weights()
    assert all(float(b.norm2.weight.detach().sum()) == 64 for b in plain.layer1)


# ----- arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,error,match', [
    (dict(depth=42), ValueError, r'depth must be one of 18, 34, 50, 101, 152; got 42'),
    (dict(num_stages=5), ValueError, r'num_stages must be an int in 1\.\.4, got 5'),
    (dict(strides=(1, 2, 2)), ValueError, r'strides must have one value per stage'),
    (dict(dilations=(1, 1, 1, 0)), ValueError, r'dilations must contain positive ints'),
    (dict(out_indices=(0, 4)), ValueError, r'out_indices contains 4, out of range'),
    (dict(style='tf'), ValueError, r"style must be one of 'pytorch', 'caffe'; got 'tf'"),
    (dict(frozen_stages=5), ValueError, r'frozen_stages must be in -1\.\.4'),
    (dict(norm_cfg=dict(type='Foo')), KeyError, r"norm_cfg type 'Foo' is not a registered"),
    (dict(norm_cfg=dict(type='GN')), ValueError, r'GN needs num_groups'),
    (dict(norm_cfg='BN'), TypeError, r'norm_cfg must be a dict with a "type" key'),
    (dict(drop_path_rate=1.5), ValueError, r'drop_path_rate must be a float in \[0, 1\)'),
    (dict(deep_stem='yes'), TypeError, r'deep_stem must be a bool \(True or False\)'),
    (dict(deep_stem=True, stem_channels=63), ValueError, r'stem_channels must be even'),
    (dict(in_channels=0), ValueError, r'in_channels must be a positive int'),
    (dict(out_indices=(0, 1), out_names=['a']), ValueError, r'out_names must be a list of 2'),
])
def test_bad_arguments(kwargs, error, match):
    kwargs = dict(dict(depth=18), **kwargs)
    with pytest.raises(error, match=match):
        ResNet(**kwargs)


def test_bad_variant_arguments():
    with pytest.raises(ValueError, match=r'depth must be one of 50, 101, 152; got 18'):
        ResNeXt(depth=18)
    with pytest.raises(ValueError, match=r'groups must be a positive int'):
        ResNeXt(depth=50, groups=0)
    with pytest.raises(ValueError, match=r'ResNetV1c always uses deep_stem=True'):
        ResNetV1c(depth=50, deep_stem=False)
    with pytest.raises(ValueError, match=r'ResNetV1d always uses avg_down=True'):
        ResNetV1d(depth=50, avg_down=False)
    assert ResNetV1d(depth=18, deep_stem=True).avg_down  # the same value is accepted


def test_bad_input_names_in_channels():
    model = ResNet(depth=18, in_channels=1, out_indices=(0,))
    with pytest.raises(ValueError, match=r'in_channels=1 but the input has 3 channels'):
        model(torch.randn(1, 3, 32, 32))
    assert model(torch.randn(1, 1, 32, 32))[0].shape == (1, 64, 8, 8)


def test_block_arguments():
    with pytest.raises(ValueError, match=r'BasicBlock has no bottleneck: expansion must be 1'):
        BasicBlock(8, 8, expansion=4)
    with pytest.raises(ValueError, match=r'out_channels \(10\) must be divisible by expansion'):
        Bottleneck(8, 10)
    with pytest.raises(ValueError, match=r"style must be one of 'pytorch', 'caffe'"):
        Bottleneck(8, 16, style='keras')
    caffe = Bottleneck(8, 16, stride=2, style='caffe')
    assert caffe.conv1.stride == (2, 2) and caffe.conv2.stride == (1, 1)
    grouped = Bottleneck(64, 256, groups=32, width_per_group=4, base_channels=64)
    assert grouped.mid_channels == 128 and grouped.conv2.groups == 32


# ----- deploy: fuse and channels_last ------------------------------------------------------------
@pytest.mark.parametrize('cls,kwargs,expected_folds', [
    (ResNet, dict(depth=50), 53),
    (ResNetV1d, dict(depth=18), 3 + 16 + 3),
    (ResNet, dict(depth=18, style='caffe', norm_cfg=dict(type='FrozenBN'),
                  strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)), 1 + 16 + 3),
])
def test_fuse_keeps_outputs(cls, kwargs, expected_folds):
    model = randomize_(cls(**kwargs)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        fused = model.fuse()
        got = fused(x)  # inference: fused conv+ReLU(+add) kernels where available
    assert fused is model and fused.num_fused_norms == expected_folds
    assert not _norms(fused), 'every norm is folded'
    assert all(b._folded for b in fused.modules() if isinstance(b, (BasicBlock, Bottleneck)))
    with torch.enable_grad():
        got_autograd = fused(x)  # the plain-op path of a fused model
    for e, g, ga in zip(expected, got, got_autograd):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))
        torch.testing.assert_close(ga.detach(), e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))


def test_fuse_leaves_group_norm_alone():
    model = randomize_(ResNet(depth=18, out_indices=(0,),
                              norm_cfg=dict(type='GN', num_groups=8))).eval()
    x = torch.randn(1, 3, 32, 32)
    expected = model(x)[0]
    assert model.fuse().num_fused_norms == 0
    torch.testing.assert_close(model(x)[0], expected)


def test_fuse_hands_the_stem_relu_to_conv1():
    from mmbackbones.models.layers.fuse import Conv2dReLU
    model = randomize_(ResNet(depth=18, out_indices=(0,))).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)[0]
        model.fuse()
        assert type(model.conv1) is Conv2dReLU and isinstance(model.relu, nn.Identity)
        torch.testing.assert_close(model(x)[0], expected, rtol=1e-4, atol=1e-4)


def test_fused_channels_last_same_values():
    base = randomize_(ResNet(depth=18)).eval()
    cl = ResNet(depth=18, channels_last=True).eval()
    cl.load_state_dict(base.state_dict())
    cl.fuse()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        for e, g in zip(base(x), cl(x)):
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))


def test_channels_last_option_same_values():
    base = randomize_(ResNet(depth=18)).eval()
    cl = ResNet(depth=18, channels_last=True).eval()
    cl.load_state_dict(base.state_dict())
    assert cl.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for e, g in zip(base(x), cl(x)):
            assert g.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


# ----- configs -----------------------------------------------------------------------------------
CONFIGS = family_configs('resnet')


def test_config_set_is_complete():
    names = {os.path.basename(p) for p in CONFIGS}
    for required in ('resnet18.py', 'resnet34.py', 'resnet50.py', 'resnet101.py', 'resnet152.py',
                     'resnet50-v1c.py', 'resnet50-v1d.py', 'resnext50-32x4d.py',
                     'resnet50-dc5.py', 'resnet50-v1c-os8.py'):
        assert required in names


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_builds(path):
    model = build_backbone_from_config(path)
    assert len(model.out_names) == len(model.out_channels) == len(model.out_strides) >= 1
    name = os.path.basename(path)
    expected_strides = {'resnet50-dc5.py': (4, 8, 16, 16), 'resnet50-v1c-os8.py': (4, 8, 8, 8),
                        'resnet50-v1c-d8_mmseg.py': (4, 8, 8, 8)}
    assert model.out_strides == expected_strides.get(name, (4, 8, 16, 32))
    if name in ('resnet18.py', 'resnet50-dc5.py', 'resnet50-detectron2.py'):
        model.eval()
        with torch.no_grad():
            outs = model(torch.randn(1, 3, 64, 64))
        outs = list(outs.values()) if isinstance(outs, dict) else list(outs)
        assert [o.shape[1] for o in outs] == list(model.out_channels)


# ----- mmdet / mmseg arguments -------------------------------------------------------------------
def _has_mmcv_ops() -> bool:
    try:
        import mmcv.ops  # noqa: F401
    except ImportError:
        return False
    return True


def test_mmseg_contract_dilation_and_multi_grid():
    os8 = dict(depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), out_indices=(0, 1, 2, 3))
    plain = ResNetV1c(**os8)
    assert [b.conv2.dilation[0] for b in plain.layer3] == [2] * 6
    contracted = ResNetV1c(contract_dilation=True, **os8)
    assert [b.conv2.dilation[0] for b in contracted.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in contracted.layer4] == [2, 4, 4]
    assert [b.conv2.padding[0] for b in contracted.layer4] == [2, 4, 4]
    assert [b.conv2.dilation[0] for b in contracted.layer2] == [1] * 4  # not dilated
    grid = ResNetV1c(contract_dilation=True, multi_grid=(1, 2, 4), **os8)
    assert [b.conv2.dilation[0] for b in grid.layer4] == [1, 2, 4]  # rates as given
    assert [b.conv2.dilation[0] for b in grid.layer3] == [1, 2, 2, 2, 2, 2]
    # same weights, different dilations: the outputs differ only from the changed block on
    grid.load_state_dict(plain.state_dict())
    plain.eval(), grid.eval()
    with torch.no_grad():
        a, b = plain(torch.randn(1, 3, 32, 32)), grid(torch.randn(1, 3, 32, 32))
    assert [t.shape for t in a] == [t.shape for t in b]
    assert grid.out_strides == (4, 8, 8, 8)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(multi_grid=(1, 2)), ValueError, 'multi_grid must give one dilation per block'),
    (dict(multi_grid=(1, 0, 4)), ValueError, 'multi_grid'),
    (dict(contract_dilation='yes'), TypeError, 'contract_dilation'),
    (dict(dcn=dict(type='Conv2d')), ValueError, 'dcn must be None or an mmcv deformable'),
    (dict(dcn=dict(type='DCN', fallback_on_stride=True), stage_with_dcn=(False, True, True,
                                                                          True)),
     ValueError, 'fallback_on_stride'),
    (dict(dcn=dict(type='DCN'), stage_with_dcn=(False, True)), ValueError, 'stage_with_dcn'),
    (dict(dcn=dict(type='DCN'), stage_with_dcn=(False, True, True, True),
          conv_cfg=dict(type='ConvWS')), ValueError, 'conv_cfg must be None'),
    (dict(depth=18, dcn=dict(type='DCN'), stage_with_dcn=(False, True, True, True)),
     ValueError, 'BasicBlock'),
    (dict(depth=18, plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25),
                                  position='after_conv2')]), ValueError, 'BasicBlock'),
    (dict(plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25), position='after_conv4')]),
     ValueError, 'position'),
    (dict(plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25), position='after_conv3',
                        stages=(True,))]), ValueError, 'stages'),
    (dict(plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25), position='after_conv3',
                        where=1)]), KeyError, 'where'),
    (dict(plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25), position='after_conv3')] * 2),
     ValueError, 'postfix'),
    (dict(pretrained=dict(checkpoint='x')), TypeError, 'pretrained'),
    (dict(pretrained='r50.pth', init_cfg=dict(type='Kaiming', layer='Conv2d')), ValueError,
     'contradict'),
])
def test_bad_mmdet_mmseg_arguments(kwargs, error, match):
    kwargs = dict(dict(depth=50), **kwargs)
    with pytest.raises(error, match=match):
        ResNet(**kwargs)


def test_dcn_needs_the_full_mmcv():
    dcn = dict(dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
               stage_with_dcn=(False, True, True, True))
    if not _has_mmcv_ops():  # mmcv-lite: a clear error naming the install
        with pytest.raises(ImportError, match='full mmcv'):
            ResNet(depth=50, **dcn)
        return
    model = ResNeXt(depth=50, groups=32, base_width=4, **dcn)
    assert type(model.layer1[0].conv2).__name__ == 'Conv2d'
    assert type(model.layer2[0].conv2).__name__ == 'DeformConv2dPack'
    assert model.layer2[0].conv2.groups == 32
    assert 'layer2.0.conv2.conv_offset.weight' in model.state_dict()


def test_mmdet_plugins_positions_and_stages():
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=1. / 4), stages=(False, True, True, True),
                    position='after_conv3'),
               dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1, num_heads=8,
                             attention_type='0010', kv_stride=2),
                    stages=(False, False, True, True), position='after_conv2')]
    model = ResNet(depth=50, plugins=plugins, out_indices=(0, 1, 2, 3)).eval()
    keys = model.state_dict()
    assert not any('context_block' in k for k in keys if k.startswith('layer1.'))
    assert 'layer2.3.context_block.conv_mask.weight' in keys
    assert 'layer3.0.gen_attention_block.key_conv.weight' in keys
    assert not any('gen_attention_block' in k for k in keys if k.startswith('layer2.'))
    # the block runs conv1..conv3 with each plugin at its position, then adds the shortcut
    block, x = model.layer3[0], torch.randn(1, 512, 8, 8)
    with torch.no_grad():
        out = block.relu(block.norm1(block.conv1(x)))
        out = block.gen_attention_block(block.relu(block.norm2(block.conv2(out))))
        out = block.context_block(block.norm3(block.conv3(out)))
        expected = block.relu(out + block.downsample(x))
        torch.testing.assert_close(block(x), expected)
        assert [o.shape[1] for o in model(torch.randn(1, 3, 64, 64))] == [256, 512, 1024, 2048]
        before = model(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
        model.fuse()  # plugins keep the unfused forward; values stay the same
        after = model(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    for a, b in zip(after, before):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_two_plugins_of_one_type_need_postfixes_and_chain():
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=0.25, postfix=i), position='after_conv3')
               for i in (1, 2)]
    block = ResNet(depth=50, out_indices=(0,), plugins=plugins).layer1[1].eval()
    x = torch.randn(1, 256, 8, 8)
    with torch.no_grad():
        out = block.norm3(block.conv3(block.relu(block.norm2(block.conv2(
            block.relu(block.norm1(block.conv1(x))))))))
        expected = block.relu(block.context_block2(block.context_block1(out)) + x)
        torch.testing.assert_close(block(x), expected)


def test_resnext_base_width_is_width_per_group():
    ours = ResNeXt(depth=50, groups=32, width_per_group=8)
    mmdet_style = ResNeXt(depth=50, groups=32, base_width=8)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in mmdet_style.state_dict().items()}
    assert mmdet_style.layer1[0].conv2.out_channels == 256
    assert ResNeXt(depth=50, groups=32, base_width=4, width_per_group=4).width_per_group == 4
    with pytest.raises(ValueError, match='base_width=8 .* contradict'):
        ResNeXt(depth=50, groups=32, width_per_group=16, base_width=8)
    with pytest.raises(ValueError, match='base_width'):
        ResNeXt(depth=50, groups=32, base_width=0)


def test_pretrained_is_a_pretrained_init_cfg_with_one_warning_naming_the_twin():
    with pytest.warns(UserWarning) as record:
        model = build_backbone(dict(type='ResNetV1c', depth=18, pretrained='open-mmlab://x'))
    assert [str(w.message) for w in record if 'mmbackbones.mmseg.ResNetV1c' in str(w.message)]
    assert len(record) == 1
    assert model.init_cfg == dict(type='Pretrained', checkpoint='open-mmlab://x')
    assert ResNet(depth=18).init_cfg[0]['type'] == 'Kaiming'  # the default init otherwise


def _mmcv_era_deep_stem(in_channels=3, stem_channels=64, norm_cfg=dict(type='BN')):
    """The deep stem as mmdet/mmseg build it: one Sequential of conv, norm, ReLU (x3)."""
    from mmcv.cnn import build_conv_layer, build_norm_layer
    half, layers = stem_channels // 2, []
    for cin, cout, stride in ((in_channels, half, 2), (half, half, 1), (half, stem_channels, 1)):
        layers += [build_conv_layer(None, cin, cout, 3, stride=stride, padding=1, bias=False),
                   build_norm_layer(norm_cfg, cout)[1], nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize('norm_cfg', [dict(type='BN'), dict(type='GN', num_groups=8)],
                         ids=['bn', 'gn'])
def test_mmcv_era_deep_stem_checkpoint_loads_every_tensor(tmp_path, norm_cfg):
    from mmbackbones.checkpoint import detect_format, load_checkpoint
    source = randomize_(ResNetV1c(depth=18, norm_cfg=norm_cfg), seed=3)
    stem = randomize_(_mmcv_era_deep_stem(norm_cfg=norm_cfg), seed=4).eval()
    state = {k: v for k, v in source.state_dict().items() if not k.startswith('stem.')}
    state.update({f'stem.{k}': v for k, v in stem.state_dict().items()})
    state['fc.weight'] = torch.zeros(10, 512)  # an ImageNet classifier, as open-mmlab:// has
    assert [c.name for c in detect_format(state)] == ['openmmlab_resnet']
    path = str(tmp_path / 'resnet18_v1c.pth')
    torch.save({'state_dict': state}, path)
    model = ResNetV1c(depth=18, norm_cfg=norm_cfg)
    report = load_checkpoint(model, path, strict=True)
    assert report.ok and any('openmmlab_resnet' in n for n in report.notes)
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.stem(x), stem(x))
        source.eval()
        for a, b in zip(model.layer1(model.stem(x)), source.layer1(stem(x))):
            torch.testing.assert_close(a, b)
    # a whole segmentor checkpoint (backbone.*) converts the same way
    seg = {f'backbone.{k}': v for k, v in state.items()}
    seg['decode_head.conv_seg.weight'] = torch.zeros(2, 8, 1, 1)
    torch.save({'state_dict': seg}, path)
    model = ResNetV1c(depth=18, norm_cfg=norm_cfg,
                      init_cfg=dict(type='Pretrained', checkpoint=path, strict=True))
    model.init_weights()
    with torch.no_grad():
        torch.testing.assert_close(model.eval().stem(x), stem(x))
