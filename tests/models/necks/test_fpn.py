"""FPN neck, in_channels='auto' and BackboneWithNeck / build_backbone(cfg, neck=...)."""
import pytest
import torch
import torch.nn.functional as F

from mmbackbones import MODELS, build_backbone
from mmbackbones.models.necks import FPN, BackboneWithNeck, resolve_auto_in_channels
from tests.toy_backbone import ToyBackbone  # (8, 16, 32) at strides 4, 8, 16

pytestmark = pytest.mark.usefixtures('toy_registered')  # ToyBackbone by type name

IN = [8, 16, 32]


def feats(n=1, size=64):
    return [torch.randn(n, c, size // s, size // s) for c, s in zip(IN, (4, 8, 16))]


def reference_fpn(fpn: FPN, inputs):
    """FPN by the paper, written independently: nearest 2x upsampling by repeat_interleave."""
    lat = [conv(x) for conv, x in zip(fpn.lateral_convs, inputs[fpn.start_level:])]
    for i in range(len(lat) - 1, 0, -1):
        up = lat[i].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        lat[i - 1] = lat[i - 1] + up
    return [conv(x) for conv, x in zip(fpn.fpn_convs, lat)]


@pytest.mark.parametrize('extra', [False, True, 'on_input', 'on_lateral', 'on_output'])
def test_shapes_and_strides(extra):
    fpn = FPN(IN, 16, num_outs=5, add_extra_convs=extra)
    outs = fpn(feats())
    assert len(outs) == 5
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 16), (1, 16, 8, 8), (1, 16, 4, 4),
                                              (1, 16, 2, 2), (1, 16, 1, 1)]
    assert fpn.out_strides((4, 8, 16)) == (4, 8, 16, 32, 64)
    # extra conv levels exist only when asked for
    assert len(fpn.fpn_convs) == (5 if extra else 3)
    if extra in (True, 'on_input'):
        assert fpn.fpn_convs[3].conv.in_channels == IN[-1]
    elif extra:
        assert fpn.fpn_convs[3].conv.in_channels == 16


def test_matches_independent_reference():
    fpn = FPN(IN, 16, num_outs=3)
    x = feats()
    got = fpn(x)
    want = reference_fpn(fpn, x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_start_level_and_extra_sources():
    fpn = FPN(IN, 16, num_outs=3, start_level=1, add_extra_convs='on_output',
              relu_before_extra_convs=True)
    x = feats()
    outs = fpn(x)
    assert len(fpn.lateral_convs) == 2 and fpn.lateral_convs[0].conv.in_channels == 16
    torch.testing.assert_close(outs[:2], tuple(reference_fpn(fpn, x)))
    torch.testing.assert_close(outs[2], fpn.fpn_convs[2](outs[1]))

    on_lat = FPN(IN, 16, num_outs=5, add_extra_convs='on_lateral', relu_before_extra_convs=True)
    outs = on_lat(x)
    torch.testing.assert_close(outs[3], on_lat.fpn_convs[3](on_lat.lateral_convs[2](x[2])))
    torch.testing.assert_close(outs[4], on_lat.fpn_convs[4](F.relu(outs[3])))


def test_maxpool_extra_levels_and_scale_factor_upsample():
    fpn = FPN(IN, 16, num_outs=4, upsample_cfg=dict(scale_factor=2, mode='nearest'))
    outs = fpn(feats())
    torch.testing.assert_close(outs[3], F.max_pool2d(outs[2], 1, stride=2))


def test_mmdet_parameter_names():
    fpn = FPN(IN, 16, num_outs=5, add_extra_convs='on_input',
              norm_cfg=dict(type='BN'), no_norm_on_lateral=True)
    keys = set(fpn.state_dict())
    assert 'lateral_convs.0.conv.weight' in keys and 'lateral_convs.0.conv.bias' in keys
    assert not any(k.startswith('lateral_convs.0.bn') for k in keys)  # no norm on laterals
    assert 'fpn_convs.4.conv.weight' in keys and 'fpn_convs.4.bn.running_mean' in keys
    assert 'fpn_convs.4.conv.bias' not in keys  # ConvModule drops the bias before a norm


def test_every_parameter_gets_a_gradient():
    fpn = FPN(IN, 16, num_outs=5, add_extra_convs='on_input')
    sum(o.sum() for o in fpn(feats())).backward()
    assert all(p.grad is not None for p in fpn.parameters())


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(in_channels='auto'), ValueError, 'BackboneWithNeck'),
    (dict(in_channels='automatic'), ValueError, 'in_channels'),
    (dict(in_channels=[]), TypeError, 'in_channels'),
    (dict(in_channels=[8, 0]), ValueError, r'in_channels\[i\]'),
    (dict(num_outs=2), ValueError, 'num_outs=2'),
    (dict(start_level=3), ValueError, 'start_level=3'),
    (dict(end_level=1, num_outs=3), ValueError, 'num_outs must be 2'),
    (dict(end_level=7), ValueError, 'end_level'),
    (dict(add_extra_convs='on_top'), ValueError, 'add_extra_convs'),
    (dict(out_channels=0), ValueError, 'out_channels'),
])
def test_bad_arguments(kwargs, error, match):
    args = dict(in_channels=IN, out_channels=16, num_outs=5)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        FPN(**args)


def test_wrong_number_of_inputs():
    with pytest.raises(ValueError, match='3 inputs'):
        FPN(IN, 16, num_outs=3)(feats()[:2])


def test_resolve_auto_in_channels():
    cfg = dict(type='FPN', in_channels='auto', out_channels=16, num_outs=5)
    assert resolve_auto_in_channels(cfg, (8, 16, 32))['in_channels'] == [8, 16, 32]
    assert cfg['in_channels'] == 'auto'  # the caller's dict is left alone
    assert resolve_auto_in_channels(dict(type='FPN'), [4])['in_channels'] == [4]
    assert resolve_auto_in_channels(dict(in_channels=[8, 16]), [8, 16])['in_channels'] == [8, 16]
    with pytest.raises(ValueError, match=r'does not match the backbone out_channels=\[8, 16\]'):
        resolve_auto_in_channels(dict(in_channels=[256, 512]), [8, 16])


def test_backbone_with_neck_resolves_auto():
    model = BackboneWithNeck(backbone=dict(type='ToyBackbone'),
                             neck=dict(type='FPN', in_channels='auto', out_channels=16,
                                       num_outs=5, add_extra_convs='on_output'))
    assert model.neck.in_channels == list(model.backbone.out_channels) == IN
    assert model.out_channels == (16,) * 5
    assert model.out_strides == (4, 8, 16, 32, 64)
    assert model.out_names == ('p2', 'p3', 'p4', 'p5', 'p6')
    assert model.size_divisibility == 64
    assert {k: (v.channels, v.stride) for k, v in model.output_shape().items()} == {
        'p2': (16, 4), 'p3': (16, 8), 'p4': (16, 16), 'p5': (16, 32), 'p6': (16, 64)}
    outs = model.forward_dict(torch.randn(2, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in outs.items()} == {
        'p2': (2, 16, 16, 16), 'p3': (2, 16, 8, 8), 'p4': (2, 16, 4, 4), 'p5': (2, 16, 2, 2),
        'p6': (2, 16, 1, 1)}
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.randn(1, 1, 64, 64))


def test_build_backbone_with_neck_and_registry_path():
    neck = dict(type='FPN', in_channels='auto', out_channels=8, num_outs=4)
    model = build_backbone(dict(type='ToyBackbone', out_indices=(1, 2)), neck=neck)
    assert isinstance(model, BackboneWithNeck)
    assert model.neck.in_channels == [16, 32] and model.out_strides == (8, 16, 32, 64)
    # The same through the registry, as an mmdet/mmseg config's backbone would be written.
    for scope in ('mmbackbones', 'mmcls'):
        built = MODELS.build(dict(type=f'{scope}.BackboneWithNeck',
                                  backbone=dict(type='ToyBackbone', out_indices=(1, 2)),
                                  neck=neck))
        assert isinstance(built, BackboneWithNeck) and built.neck.in_channels == [16, 32]
    # A pre-built backbone module is accepted and kept as is.
    toy = ToyBackbone()
    assert BackboneWithNeck(toy, neck).backbone is toy


def test_backbone_with_neck_freezing_passes_through():
    model = build_backbone(dict(type='ToyBackbone', frozen_stages=1, norm_eval=True),
                           neck=dict(type='FPN', out_channels=8, num_outs=3))
    model.train()
    assert not any(p.requires_grad for p in model.backbone.stem.parameters())
    assert not model.backbone.stem.training
    assert model.backbone.stages[1][1].training is False  # norm_eval keeps BN in eval
    assert model.neck.training and all(p.requires_grad for p in model.neck.parameters())


def test_backbone_with_neck_errors():
    with pytest.raises(ValueError, match='does not match'):
        build_backbone(dict(type='ToyBackbone'),
                       neck=dict(type='FPN', in_channels=[256, 512, 1024], out_channels=8,
                                 num_outs=3))
    with pytest.raises(TypeError, match='neck must be'):
        BackboneWithNeck(dict(type='ToyBackbone'), neck='FPN')
    with pytest.raises(KeyError, match='Unknown model type'):
        BackboneWithNeck(dict(type='ToyBackbone'), neck=dict(type='FPNN', out_channels=8,
                                                              num_outs=3))
    with pytest.raises(TypeError, match='out_channels'):
        BackboneWithNeck(torch.nn.Conv2d(3, 3, 1), neck=dict(type='FPN', out_channels=8,
                                                             num_outs=3))
