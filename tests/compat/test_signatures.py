"""One meaning per scope: the core classes take mmpretrain's signature and defaults (checked
against mmpretrain's real classes), the host twins take mmdet's/mmseg's (checked against the
recorded table here, and against the real classes in tests/downstream/test_host_twins.py)."""
import inspect

import pytest

from mmbackbones.compat import (MMDetHRNet, MMDetRegNet, MMDetResNet, MMDetResNetV1d, MMDetResNeXt,
                                MMDetSwinTransformer, MMSegResNet, MMSegResNetV1c,
                                MMSegResNetV1d, MMSegResNeXt, MMSegSwinTransformer,
                                MMSegHRNet, MMSegVisionTransformer)
from mmbackbones.compat.beit import MMSegBEiT, MMSegMAE
from mmbackbones.compat.mscan import MMSegMSCAN
from mmbackbones.models.backbones.mscan import MSCAN
from mmbackbones.models.backbones.beit import BEiTViT
from mmbackbones.models.backbones.convnext import ConvNeXt
from mmbackbones.models.backbones.hrnet import HRNet
from mmbackbones.models.backbones.cspnet import CSPDarkNet, CSPResNet, CSPResNeXt
from mmbackbones.models.backbones.regnet import RegNet
from mmbackbones.models.backbones.resnet import ResNet, ResNetV1c, ResNetV1d, ResNeXt
from mmbackbones.models.backbones.swin import SwinTransformer
from mmbackbones.models.backbones.vit import VisionTransformer
from mmbackbones.compat.mobile import (MMDetEfficientNet, MMDetMobileNetV2, MMSegMobileNetV2,
                                       MMSegMobileNetV3)
from mmbackbones.models.backbones.efficientnet import EfficientNet
from mmbackbones.models.backbones.efficientnet_v2 import EfficientNetV2
from mmbackbones.models.backbones.mobilenet_v2 import MobileNetV2
from mmbackbones.models.backbones.mobilenet_v3 import MobileNetV3
from mmbackbones.models.backbones.vit_eva02 import ViTEVA02
from mmbackbones.registry import HOST_TWINS, MODELS
from mmbackbones.compat import MMDetCSPDarknet, MMDetCSPNeXt, MMDetDarknet
from mmbackbones.models.backbones.cspnext import CSPNeXt
from mmbackbones.models.backbones.darknet import Darknet
from mmbackbones.models.backbones.yolox_cspdarknet import YOLOXCSPDarknet
from mmbackbones.compat import (MMDetPyramidVisionTransformer, MMDetPyramidVisionTransformerV2,
                                MMSegPCPVT, MMSegSVT)
from mmbackbones.models.backbones.pvt import PyramidVisionTransformer
from mmbackbones.models.backbones.twins import PCPVT, SVT
from tests.compat.host_signatures import HOST_SIGNATURES, REQUIRED
from tests.parity import mmpretrain_backbone
from mmbackbones.compat import MMDetRes2Net, MMDetResNeSt, MMSegResNeSt  # noqa: E402
from mmbackbones.models.backbones.res2net import Res2Net  # noqa: E402
from mmbackbones.models.backbones.resnest import ResNeSt  # noqa: E402

TWINS = {
    ('mmdet', 'HRNet'): (MMDetHRNet, HRNet),
    ('mmseg', 'HRNet'): (MMSegHRNet, HRNet),
    ('mmdet', 'ResNet'): (MMDetResNet, ResNet),
    ('mmdet', 'ResNetV1d'): (MMDetResNetV1d, ResNet),
    ('mmdet', 'ResNeXt'): (MMDetResNeXt, ResNet),
    ('mmdet', 'RegNet'): (MMDetRegNet, RegNet),
    ('mmdet', 'SwinTransformer'): (MMDetSwinTransformer, SwinTransformer),
    ('mmseg', 'ResNet'): (MMSegResNet, ResNet),
    ('mmseg', 'ResNetV1c'): (MMSegResNetV1c, ResNet),
    ('mmseg', 'ResNetV1d'): (MMSegResNetV1d, ResNet),
    ('mmseg', 'ResNeXt'): (MMSegResNeXt, ResNet),
    ('mmseg', 'SwinTransformer'): (MMSegSwinTransformer, SwinTransformer),
    ('mmseg', 'VisionTransformer'): (MMSegVisionTransformer, VisionTransformer),
    ('mmseg', 'BEiT'): (MMSegBEiT, BEiTViT),
    ('mmseg', 'MAE'): (MMSegMAE, BEiTViT),
    ('mmseg', 'MSCAN'): (MMSegMSCAN, MSCAN),
    ('mmdet', 'MobileNetV2'): (MMDetMobileNetV2, MobileNetV2),
    ('mmseg', 'MobileNetV2'): (MMSegMobileNetV2, MobileNetV2),
    ('mmseg', 'MobileNetV3'): (MMSegMobileNetV3, MobileNetV3),
    ('mmdet', 'EfficientNet'): (MMDetEfficientNet, EfficientNet),
    ('mmdet', 'PyramidVisionTransformer'): (MMDetPyramidVisionTransformer,
                                            PyramidVisionTransformer),
    ('mmdet', 'PyramidVisionTransformerV2'): (MMDetPyramidVisionTransformerV2,
                                              PyramidVisionTransformer),
    ('mmseg', 'PCPVT'): (MMSegPCPVT, PCPVT),
    ('mmseg', 'SVT'): (MMSegSVT, SVT),
}
TWINS.update({('mmdet', 'CSPDarknet'): (MMDetCSPDarknet, YOLOXCSPDarknet),
              ('mmdet', 'CSPNeXt'): (MMDetCSPNeXt, CSPNeXt),
              ('mmdet', 'Darknet'): (MMDetDarknet, Darknet)})
CORES = [VisionTransformer, SwinTransformer, ResNet, ResNetV1c, ResNetV1d, ResNeXt, RegNet,
         CSPDarkNet, CSPResNet, CSPResNeXt, ConvNeXt]
TWINS.update({('mmdet', 'ResNeSt'): (MMDetResNeSt, ResNeSt),
              ('mmseg', 'ResNeSt'): (MMSegResNeSt, ResNeSt),
              ('mmdet', 'Res2Net'): (MMDetRes2Net, Res2Net)})
CORES += [ResNeSt, Res2Net]
from mmbackbones.compat import MMDetDetectoRS_ResNet, MMDetTridentResNet  # noqa: E402
from mmbackbones.models.backbones.detectors_resnet import DetectoRS_ResNet  # noqa: E402
from mmbackbones.models.backbones.trident_resnet import TridentResNet  # noqa: E402
TWINS.update({('mmdet', 'DetectoRS_ResNet'): (MMDetDetectoRS_ResNet, DetectoRS_ResNet),
              ('mmdet', 'TridentResNet'): (MMDetTridentResNet, TridentResNet)})
CORES.append(BEiTViT)
CORES += [MobileNetV2, MobileNetV3, EfficientNet, EfficientNetV2]
CORES += [PCPVT, SVT]
CORES += [ViTEVA02]
from mmbackbones.compat.stdc import MMSegSTDCContextPathNet, MMSegSTDCNet  # noqa: E402
from mmbackbones.models.backbones.stdc import STDCContextPathNet, STDCNet  # noqa: E402

TWINS.update({('mmseg', 'STDCNet'): (MMSegSTDCNet, STDCNet),
              ('mmseg', 'STDCContextPathNet'): (MMSegSTDCContextPathNet, STDCContextPathNet)})
from mmbackbones.compat import MMDetHourglassNet, MMDetSSDVGG  # noqa: E402
from mmbackbones.models.backbones.hourglass import HourglassNet  # noqa: E402
from mmbackbones.models.backbones.vgg import SSDVGG, VGG  # noqa: E402
TWINS.update({('mmdet', 'SSDVGG'): (MMDetSSDVGG, SSDVGG),
              ('mmdet', 'HourglassNet'): (MMDetHourglassNet, HourglassNet)})
CORES.append(VGG)
# where our default is another spelling of mmpretrain's (same built model), or mmpretrain
# requires an argument we default: (class, argument) -> why
SAME_MEANING = {
    ('CSPDarkNet', 'out_indices'): '-1 is the last of the 5 stages, mmpretrain\'s (4,)',
    ('CSPResNet', 'out_indices'): '-1 is the last of the 4 stages, mmpretrain\'s (3,)',
    ('CSPResNeXt', 'out_indices'): '-1 is the last of the 4 stages, mmpretrain\'s (3,)',
}


def _params(cls):
    return [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != 'self']


def _effective_mmpretrain(name):
    """mmpretrain's arguments of ``name``; ``ResNetV1c(**kwargs)`` and ``CSPResNeXt(*args,
    **kwargs)`` take their parent's."""
    cls = mmpretrain_backbone(name)
    params = _params(cls)
    while all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        cls = cls.__mro__[1]
        params = _params(cls)
    return [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize('core', CORES, ids=lambda c: c.__name__)
def test_core_takes_mmpretrains_arguments_in_order_with_its_defaults(core):
    theirs = _effective_mmpretrain(core.__name__)
    if core in (ResNetV1c, ResNetV1d):  # (depth, **kwargs): the rest is ResNet's, as there
        assert [p.name for p in _params(core)] == ['depth', 'kwargs']
        core = ResNet
    ours = {p.name: p for p in _params(core)}
    positional = [p.name for p in _params(core) if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional[:len(theirs)] == [p.name for p in theirs], 'mmpretrain\'s order'
    for param in theirs:
        if param.default is param.empty or (core.__name__, param.name) in SAME_MEANING:
            continue  # mmpretrain requires it (we may default it) / same meaning, other spelling
        assert ours[param.name].default == param.default, (core.__name__, param.name)


@pytest.mark.parametrize('core', CORES, ids=lambda c: c.__name__)
def test_extras_are_keyword_only_or_documented(core):
    """Arguments mmpretrain has not are our documented extras (named in the class docstring);
    the host-only arguments go to ``**kwargs`` (one warning, see test_twins.py)."""
    theirs = {p.name for p in _effective_mmpretrain(core.__name__)}
    doc = ' '.join(' '.join(k.__doc__ or '' for k in core.__mro__).split())
    for param in _params(core):
        if param.name in theirs or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        assert param.name in doc, f'{core.__name__}: extra {param.name!r} is not documented'


@pytest.mark.parametrize('key', list(TWINS), ids='.'.join)
def test_twin_signature_is_the_hosts(key):
    twin, _ = TWINS[key]
    recorded = [(name, kind, default) for name, kind, default in HOST_SIGNATURES[key]]
    ours = [(p.name, p.kind.name, REQUIRED if p.default is p.empty else p.default)
            for p in _params(twin)]
    assert ours == recorded


@pytest.mark.parametrize('key', list(TWINS), ids='.'.join)
def test_twin_resolves_by_type_and_is_a_thin_adapter(key):
    from mmengine.registry import MODELS as ROOT
    host, name = key
    twin, core = TWINS[key]
    assert MODELS.get(f'mmbackbones.{host}.{name}') is twin
    assert ROOT.get(f'mmbackbones.{host}.{name}') is twin  # what mmdet's/mmseg's registry asks
    assert HOST_TWINS[host].twin(name) is twin
    assert issubclass(twin, core)
    # no second implementation: a twin defines no forward and builds no layer of its own
    for klass in twin.__mro__[:twin.__mro__.index(core)]:
        assert 'forward' not in vars(klass) and '_build' not in vars(klass), klass


def test_host_scope_without_a_twin_is_the_hosts_own_registry():
    """``mmseg.X`` that is not a twin is looked up where it was before the twins existed (an
    unknown name is a ``KeyError`` naming it, with or without mmseg installed)."""
    with pytest.raises(KeyError, match='NoSuchModel'):
        MODELS.get('mmseg.NoSuchModel')


def test_no_twin_registry_in_mmengines_tree():
    """mmengine switches to a default scope ('mmseg') by searching its registry tree for that
    scope: a twin registry found there would stand in for mmseg's own."""
    from mmengine.registry import MODELS as ROOT
    MODELS.get('mmbackbones.mmseg.VisionTransformer')  # everything registered
    stack, scopes = [ROOT], []
    while stack:
        registry = stack.pop()
        scopes.append(registry.scope)
        stack.extend(registry.children.values())
    assert 'mmbackbones' in scopes
    for twins in HOST_TWINS.values():
        assert twins.parent is None and twins not in stack
    mine = [r for r in MODELS.children.values() if r.scope in HOST_TWINS]
    assert mine == []