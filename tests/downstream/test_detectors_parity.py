"""DetectoRS_ResNet against mmdet 3.3's own class, through the host twin
``mmbackbones.mmdet.DetectoRS_ResNet``: the native state dict loads with ``strict=True`` (same
keys, same order), equal outputs on the same weights with ConvAWS convs, SAC (plain and
deformable) and the RFP path (``rfp_forward``), ``output_img``, ``frozen_stages``/``norm_eval``
as upstream; mmdet's own ``RFP`` neck drives our backbones (its ``rfp_backbone`` built from our
type), and a whole DetectoRS detector's checkpoint made by mmdet loads strictly into the same
detector with our type."""
import importlib
import warnings

import pytest
import torch
from torch import nn

from ._common import require

require('mmdet')

from mmbackbones.compat import MMDetDetectoRS_ResNet  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

NARROW = dict(depth=50, base_channels=16)
AWS = dict(conv_cfg=dict(type='ConvAWS'))
SAC_STAGES = (False, True, True, True)
CASES = {
    'plain': dict(NARROW),
    'aws': dict(NARROW, **AWS),
    'aws-sac': dict(NARROW, **AWS, sac=dict(type='SAC', use_deform=False),
                    stage_with_sac=SAC_STAGES),
    'aws-sac-deform-img': dict(NARROW, **AWS, sac=dict(type='SAC', use_deform=True),
                               stage_with_sac=SAC_STAGES, output_img=True),
    'rfp-sac-caffe': dict(NARROW, **AWS, sac=dict(type='SAC', use_deform=False),
                          stage_with_sac=(False, False, True, True), rfp_inplanes=24,
                          style='caffe', deep_stem=True, avg_down=True),
}
SIZES = ((96, 96), (97, 103))  # SAC reflect-pads by 2: the last stage needs sides >= 3


def _native(**kwargs):
    importlib.import_module('mmdet.models')
    from mmdet.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type='DetectoRS_ResNet', _scope_='mmdet', **kwargs))


def aws_perturb_(model: nn.Module, seed: int = 0) -> nn.Module:
    """``perturb_``, then AWS statistics near the weights' own (as when an ImageNet checkpoint
    is loaded; unit-variance standardised weights would overflow a 50-layer network)."""
    perturb_(model, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, 'weight_gamma'):
                flat = m.weight.flatten(1)
                noise = torch.rand(m.weight_gamma.shape, generator=gen) * 0.2 + 0.9
                m.weight_gamma.copy_(flat.std(1).view(-1, 1, 1, 1) * noise)
                m.weight_beta.copy_(flat.mean(1).view(-1, 1, 1, 1))
    return model


def _pair(**kwargs):
    native = _native(**kwargs)
    aws_perturb_(native)
    ours = MMDetDetectoRS_ResNet(**kwargs)
    if kwargs.get('deep_stem'):  # mmcv-era stem names (stem.0/1/3/4/6/7), converted on load
        assert len(ours.state_dict()) == len(native.state_dict())
    else:
        assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    return native, ours


def _rfp_feats(model, size, channels, seed=3):
    gen = torch.Generator().manual_seed(seed)
    strides = [4 * 2 ** i for i in range(4)]
    return [torch.randn(2, channels, -(-size[0] // s), -(-size[1] // s), generator=gen)
            for s in strides]


@pytest.mark.parametrize('name', list(CASES))
def test_outputs_equal_in_eval(name):
    kwargs = CASES[name]
    native, ours = _pair(**kwargs)
    native.eval()
    ours.eval()
    for size in SIZES:
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected, got = native(x), ours(x)
            assert_outputs_close(expected, got)
            if kwargs.get('output_img'):
                assert got[0] is x and len(got) == 5 and ours.out_names[0] == 'img'
            if kwargs.get('rfp_inplanes'):
                feats = _rfp_feats(ours, size, kwargs['rfp_inplanes'])
                assert_outputs_close(native.rfp_forward(x, feats), ours.rfp_forward(x, feats))


@pytest.mark.parametrize('frozen_stages', [-1, 1, 4])
def test_frozen_stages_norm_eval_and_training_forward(frozen_stages):
    kwargs = dict(CASES['rfp-sac-caffe'], frozen_stages=frozen_stages, norm_eval=False)
    native, ours = _pair(**kwargs)
    native.train()
    ours.train()
    flags = [(p.requires_grad) for p in ours.parameters()]
    assert flags == [p.requires_grad for p in native.parameters()]
    assert [m.training for m in ours.modules() if isinstance(m, nn.BatchNorm2d)] == \
        [m.training for m in native.modules() if isinstance(m, nn.BatchNorm2d)]
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    feats = _rfp_feats(ours, (96, 96), 24)
    assert_outputs_close(native(x), ours(x))  # batch statistics where not frozen, as there
    assert_outputs_close(native.rfp_forward(x, feats), ours.rfp_forward(x, feats))


def test_defaults_as_upstream():
    native, ours = _pair(**NARROW)
    assert ours.norm_eval is native.norm_eval is True
    assert ours.out_indices == tuple(native.out_indices) == (0, 1, 2, 3)
    assert ours.stem_channels == native.stem_channels == 16
    native.train()
    ours.train()
    assert not any(m.training for m in ours.modules() if isinstance(m, nn.BatchNorm2d))


def test_our_sac_equals_mmcvs():
    """Our plain-PyTorch SAC (what mmcv-lite users get) equals mmcv's SAConv2d."""
    from mmcv.ops.saconv import SAConv2d as TheirSAC

    from mmbackbones.models.layers.sac import SAConv2d
    for deform, stride, dilation in ((False, 1, 1), (False, 2, 2), (True, 2, 1)):
        theirs = TheirSAC(8, 12, 3, stride=stride, padding=dilation, dilation=dilation,
                          bias=False, use_deform=deform)
        aws_perturb_(theirs)
        ours = SAConv2d(8, 12, 3, stride=stride, padding=dilation, dilation=dilation,
                        bias=False, use_deform=deform)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(2, 8, 13, 11, generator=torch.Generator().manual_seed(4))
        assert_outputs_close([theirs(x)], [ours(x)])


def test_mmdet_rfp_neck_drives_our_backbone():
    """mmdet's RFP neck, with ``rfp_backbone`` of our type, built by mmdet's registry: its
    backbone is ours, and neck(backbone(x)) equals the all-mmdet pipeline on the same
    weights."""
    from mmdet.registry import MODELS
    backbone = dict(CASES['aws-sac'], output_img=True)
    rfp_backbone = dict(CASES['aws-sac'], rfp_inplanes=32, frozen_stages=1)  # 4 ASPP branches
    neck = dict(type='RFP', in_channels=[64, 128, 256, 512], out_channels=16, num_outs=5,
                rfp_steps=2, aspp_out_channels=8, aspp_dilations=(1, 3, 6, 1))
    from mmengine.registry import DefaultScope
    # RFP builds its backbone by the default scope: mmdet's, whatever an earlier test set
    with warnings.catch_warnings(), DefaultScope.overwrite_default_scope('mmdet'):
        warnings.simplefilter('ignore')
        native_neck = MODELS.build(dict(neck, rfp_backbone=dict(rfp_backbone,
                                                                type='DetectoRS_ResNet')))
        our_neck = MODELS.build(dict(neck, rfp_backbone=dict(
            rfp_backbone, type='mmbackbones.mmdet.DetectoRS_ResNet')))
    assert isinstance(our_neck.rfp_modules[0], MMDetDetectoRS_ResNet)
    native_bb, ours_bb = _pair(**backbone)
    aws_perturb_(native_neck, seed=5)
    our_neck.load_state_dict(native_neck.state_dict(), strict=True)
    for m in (native_bb, ours_bb, native_neck, our_neck):
        m.eval()
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert_outputs_close(native_neck(native_bb(x)), our_neck(ours_bb(x)))


# ----- TridentResNet ---------------------------------------------------------------------------
from mmbackbones.compat import MMDetTridentResNet  # noqa: E402

TRIDENT = dict(depth=50, num_branch=3, test_branch_idx=1, trident_dilations=(1, 2, 3),
               num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ),
               base_channels=16)
TRIDENT_CASES = {
    'shipped-c4': dict(TRIDENT, style='caffe', frozen_stages=1,
                       norm_cfg=dict(type='BN', requires_grad=False)),
    'all-branches-pytorch': dict(TRIDENT, test_branch_idx=-1, out_indices=(0, 1, 2)),
    'two-branches-avg-down': dict(TRIDENT, num_branch=2, trident_dilations=(1, 3),
                                  test_branch_idx=0, avg_down=True, deep_stem=True),
}


def _trident_pair(**kwargs):
    importlib.import_module('mmdet.models')
    from mmdet.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        native = MODELS.build(dict(type='TridentResNet', _scope_='mmdet', **kwargs))
    for m in native.modules():  # mmdet allocates the trident weight uninitialised
        if type(m).__name__ == 'TridentConv':
            nn.init.kaiming_uniform_(m.weight, a=1)
    perturb_(native)
    ours = MMDetTridentResNet(**kwargs)
    assert len(ours.state_dict()) == len(native.state_dict())
    if not kwargs.get('deep_stem'):
        assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    return native, ours


@pytest.mark.parametrize('name', list(TRIDENT_CASES))
def test_trident_outputs_equal_in_eval_and_training(name):
    kwargs = TRIDENT_CASES[name]
    native, ours = _trident_pair(**kwargs)
    for train in (False, True):
        native.train(train)
        ours.train(train)
        for size in ((64, 64), (45, 61)):
            x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                expected, got = native(x), ours(x)
            assert_outputs_close(expected, got)
            factors = ours.out_batch_factors
            assert [g.shape[0] for g in got] == [2 * f for f in factors]
            multi = train or kwargs['test_branch_idx'] == -1
            assert factors[-1] == (kwargs['num_branch'] if multi else 1)
    # training forwards updated the running statistics the same way (per branch, as there)
    for (key, theirs), mine in zip(native.state_dict().items(), ours.state_dict().values()):
        torch.testing.assert_close(mine, theirs, msg=key)


@pytest.mark.parametrize('frozen_stages', [-1, 1, 3])
def test_trident_frozen_stages_and_norm_eval_as_upstream(frozen_stages):
    native, ours = _trident_pair(**dict(TRIDENT, frozen_stages=frozen_stages))
    assert ours.norm_eval is native.norm_eval is True
    native.train()
    ours.train()
    assert [p.requires_grad for p in ours.parameters()] == \
        [p.requires_grad for p in native.parameters()]
    assert [m.training for m in ours.modules() if isinstance(m, nn.BatchNorm2d)] == \
        [m.training for m in native.modules() if isinstance(m, nn.BatchNorm2d)]


def test_trident_refusals_name_the_argument():
    with pytest.raises(ValueError, match='num_stages'):
        MMDetTridentResNet(**dict(TRIDENT, num_stages=4, strides=(1, 2, 2, 2),
                                  dilations=(1, 1, 1, 1)))
    with pytest.raises(ValueError, match='trident_dilations'):
        MMDetTridentResNet(**dict(TRIDENT, trident_dilations=(1, 2)))
    with pytest.raises(ValueError, match='test_branch_idx'):
        MMDetTridentResNet(**dict(TRIDENT, test_branch_idx=3))
