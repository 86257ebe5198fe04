"""MobileNetV2/V3 and EfficientNet against mmseg 1.2.2's and mmdet 3.3's own classes, through
the twins (``mmbackbones.mmseg.MobileNetV2``/``MobileNetV3``, ``mmbackbones.mmdet.MobileNetV2``/
``EfficientNet``): identical keys (mmdet's MobileNetV2 converted on load), equal outputs on the
same weights, ``frozen_stages``/``norm_eval`` as upstream, ``pretrained``/``init_cfg``."""
import warnings

import pytest
import torch
from torch import nn

from ._common import require

require('mmseg')
require('mmdet')

from mmbackbones.compat.mobile import (MMDetEfficientNet, MMDetMobileNetV2,  # noqa: E402
                                       MMSegMobileNetV2, MMSegMobileNetV3)
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

TWINS = {('mmseg', 'MobileNetV2'): MMSegMobileNetV2, ('mmseg', 'MobileNetV3'): MMSegMobileNetV3,
         ('mmdet', 'MobileNetV2'): MMDetMobileNetV2, ('mmdet', 'EfficientNet'): MMDetEfficientNet}
D8 = dict(strides=(1, 2, 2, 1, 1, 1, 1), dilations=(1, 1, 1, 2, 2, 4, 4))
CASES = [('mmseg', 'MobileNetV2', {}), ('mmseg', 'MobileNetV2', dict(D8, out_indices=(0, 3, 6))),
         ('mmseg', 'MobileNetV2', dict(widen_factor=0.5, out_indices=(1, 2))),
         ('mmseg', 'MobileNetV3', {}), ('mmseg', 'MobileNetV3', dict(arch='large')),
         ('mmseg', 'MobileNetV3', dict(arch='large', reduction_factor=2,
                                       out_indices=(1, 3, 16))),
         ('mmdet', 'MobileNetV2', {}), ('mmdet', 'MobileNetV2', dict(out_indices=(2, 4, 6))),
         ('mmdet', 'EfficientNet', dict(arch='b0', out_indices=(2, 4, 6))),
         ('mmdet', 'EfficientNet', dict(arch='es', out_indices=(1, 3, 5)))]


def _native(toolbox: str, kind: str, **kwargs):
    import importlib
    importlib.import_module(f'{toolbox}.models')
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return registry.build(dict(type=kind, _scope_=toolbox, **kwargs))


def _pair(toolbox: str, kind: str, **kwargs):
    native = _native(toolbox, kind, **kwargs)
    perturb_(native)
    ours = TWINS[(toolbox, kind)](**kwargs)
    ours.load_state_dict(native.state_dict(), strict=True)  # mmdet MobileNetV2: converted
    return native, ours


@pytest.mark.parametrize('toolbox,kind,kwargs', CASES)
def test_keys_and_outputs_equal(toolbox, kind, kwargs):
    native, ours = _pair(toolbox, kind, **kwargs)
    if (toolbox, kind) == ('mmdet', 'MobileNetV2'):
        from mmbackbones.checkpoint.converters.mmdet_mobilenet_v2 import \
            revert_mmdet_mobilenet_v2
        assert list(revert_mmdet_mobilenet_v2(ours.state_dict())) == list(native.state_dict())
    else:
        assert list(ours.state_dict()) == list(native.state_dict())
    native.eval()
    ours.eval()
    for size in ((64, 64), (45, 61)):
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected, got = native(x), ours(x)
        expected = [expected] if isinstance(expected, torch.Tensor) else expected
        assert_outputs_close(expected, got)
    assert len(ours.out_channels) == len(got)
    assert tuple(o.shape[1] for o in got) == ours.out_channels


def _flags(model: nn.Module):
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    return grads, modes


@pytest.mark.parametrize('toolbox,kind,frozen', [
    ('mmseg', 'MobileNetV2', 3), ('mmseg', 'MobileNetV3', 5), ('mmseg', 'MobileNetV3', 0),
    ('mmdet', 'EfficientNet', 3), ('mmdet', 'EfficientNet', 0), ('mmseg', 'MobileNetV2', -1)])
@pytest.mark.parametrize('norm_eval', [False, True])
def test_frozen_stages_and_norm_eval_as_upstream(toolbox, kind, frozen, norm_eval):
    kwargs = dict(frozen_stages=frozen, norm_eval=norm_eval)
    if kind == 'EfficientNet':
        kwargs['out_indices'] = (2, 4, 6)
    native, ours = _pair(toolbox, kind, **kwargs)
    native.train()
    ours.train()
    (grads, modes), (native_grads, native_modes) = _flags(ours), _flags(native)
    if (toolbox, kind) == ('mmseg', 'MobileNetV2') and frozen >= 0 and not norm_eval:
        # the one documented difference: a frozen stem's norm stays in eval mode here (the
        # contract of every family); the hosts freeze conv1's parameters but train its BN
        assert modes.pop('conv1.bn') is False and native_modes.pop('conv1.bn') is True
    assert grads == native_grads
    assert modes == native_modes


def test_pretrained_and_init_cfg_as_the_hosts():
    for (toolbox, kind), twin in TWINS.items():
        if kind == 'EfficientNet':
            continue  # mmdet's EfficientNet takes no pretrained=
        native = _native(toolbox, kind, pretrained='a.pth')
        with pytest.warns(UserWarning, match='deprecated'):
            ours = twin(pretrained='a.pth')
        assert ours.init_cfg == native.init_cfg == dict(type='Pretrained', checkpoint='a.pth')
        assert twin().init_cfg == _native(toolbox, kind).init_cfg
    assert MMDetEfficientNet().init_cfg == _native('mmdet', 'EfficientNet').init_cfg


def test_hosts_refusals():
    with pytest.raises(ValueError, match='out_indices'):
        MMSegMobileNetV2(out_indices=(7, ))  # mmseg has no conv2
    with pytest.raises(ValueError, match='arch'):
        MMSegMobileNetV3(arch='small_075')
    with pytest.raises(ValueError, match='arch'):
        MMDetEfficientNet(arch='l2')


class _Whole(nn.Module):
    """A detector/segmentor's state dict around its backbone."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.decode_head = nn.Conv2d(4, 2, 1)


@pytest.mark.parametrize('toolbox,kind,kwargs', [
    ('mmdet', 'MobileNetV2', dict(out_indices=(2, 4, 6))), ('mmseg', 'MobileNetV2', {}),
    ('mmseg', 'MobileNetV3', dict(arch='large')), ('mmdet', 'EfficientNet', dict(arch='b0'))])
def test_whole_model_checkpoints_both_ways(toolbox, kind, kwargs, tmp_path):
    """The host's whole-model checkpoint loads into ours with mmengine's ``load_checkpoint``
    and ``strict=True`` (mmdet's MobileNetV2 names converted on load); ours, written back with
    ``convert_checkpoint_to(to=host)``, loads strictly into the host's module. Outputs equal."""
    from mmengine.runner import load_checkpoint

    from mmbackbones.checkpoint.convert import convert_checkpoint_to
    native, _ = _pair(toolbox, kind, **kwargs)
    path = str(tmp_path / 'native.pth')
    torch.save({'state_dict': _Whole(native).state_dict()}, path)
    ours = _Whole(TWINS[(toolbox, kind)](**kwargs))
    load_checkpoint(ours, path, map_location='cpu', strict=True, logger='silent')
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    native.eval()
    ours.eval()
    with torch.no_grad():
        assert_outputs_close(native(x), ours.backbone(x))
    perturb_(ours.backbone, seed=5)
    src, dst = str(tmp_path / 'ours.pth'), str(tmp_path / 'back.pth')
    torch.save({'state_dict': ours.state_dict()}, src)
    convert_checkpoint_to(src, dst, to=toolbox)
    back = _native(toolbox, kind, **kwargs)
    whole = _Whole(back)
    load_checkpoint(whole, dst, map_location='cpu', strict=True, logger='silent')
    back.eval()
    with torch.no_grad():
        assert_outputs_close(ours.backbone(x), back(x))
