"""HRNet against mmseg 1.2.2's and mmdet 3.3's own classes: identical keys, equal outputs on the
same weights, ``frozen_stages``/``norm_eval`` as upstream, through the host adapters of
``mmbackbones.models.backbones.hrnet_twins`` (mmseg: bilinear fuse upsampling; mmdet:
nearest, ``norm_eval=True`` by default)."""
import copy
import warnings

import pytest
import torch
from torch import nn

from ._common import require

require('mmseg')
require('mmdet')

from mmbackbones.models.backbones.hrnet import HRNet, arch_to_extra  # noqa: E402
from mmbackbones.models.backbones.hrnet_twins import MMDetHRNet, MMSegHRNet  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

SMALL = arch_to_extra(HRNet.arch_zoo['w18_small_v2'])  # mmseg's hr18s
TWINS = {'mmseg': MMSegHRNet, 'mmdet': MMDetHRNet}


def _native(toolbox: str, **kwargs):
    import importlib
    importlib.import_module(f'{toolbox}.models')
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return registry.build(dict(type='HRNet', _scope_=toolbox, **kwargs))


def _pair(toolbox: str, **kwargs):
    native = _native(toolbox, extra=copy.deepcopy(SMALL), **kwargs)
    perturb_(native)
    ours = TWINS[toolbox](extra=copy.deepcopy(SMALL), **kwargs)
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    return native, ours


@pytest.mark.parametrize('toolbox', ['mmseg', 'mmdet'])
def test_w18_keys_identical(toolbox):
    with torch.device('meta'):
        native = _native(toolbox, extra=arch_to_extra(HRNet.arch_zoo['w18']))
        ours = TWINS[toolbox](extra=arch_to_extra(HRNet.arch_zoo['w18']))
        core = HRNet(arch='w18')
    assert list(ours.state_dict()) == list(native.state_dict()) == list(core.state_dict())


@pytest.mark.parametrize('toolbox,size', [('mmseg', (64, 64)), ('mmseg', (45, 61)),
                                          ('mmdet', (64, 64))])
@pytest.mark.parametrize('multiscale_output', [True, False])
def test_outputs_equal_in_eval(toolbox, size, multiscale_output):
    native, ours = _pair(toolbox, multiscale_output=multiscale_output)
    native.eval()
    ours.eval()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))


def _flags(model: nn.Module):
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    return grads, modes


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3, 4])
def test_mmseg_frozen_stages_and_training_forward(frozen_stages):
    native, ours = _pair('mmseg', frozen_stages=frozen_stages)
    native.train()
    ours.train()
    assert _flags(ours) == _flags(native)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert_outputs_close(native(x), ours(x))  # batch statistics where not frozen, as there


@pytest.mark.parametrize('toolbox,kwargs', [('mmdet', {}), ('mmdet', dict(norm_eval=False)),
                                            ('mmseg', dict(norm_eval=True))])
def test_norm_eval_as_upstream(toolbox, kwargs):
    native, ours = _pair(toolbox, **kwargs)
    native.train()
    ours.train()
    assert ours.norm_eval == native.norm_eval
    assert _flags(ours) == _flags(native)


def test_mmdet_has_no_frozen_stages_and_both_take_pretrained():
    with pytest.raises(TypeError, match='frozen_stages'):
        MMDetHRNet(extra=copy.deepcopy(SMALL), frozen_stages=1)
    for toolbox, twin in TWINS.items():
        native = _native(toolbox, extra=copy.deepcopy(SMALL), pretrained='a.pth')
        with pytest.warns(UserWarning, match='deprecated'):
            ours = twin(extra=copy.deepcopy(SMALL), pretrained='a.pth')
        assert ours.init_cfg == native.init_cfg == dict(type='Pretrained', checkpoint='a.pth')
        assert twin(extra=copy.deepcopy(SMALL)).init_cfg == _native(
            toolbox, extra=copy.deepcopy(SMALL)).init_cfg
        with pytest.raises(ValueError, match='contradict'):
            twin(extra=copy.deepcopy(SMALL), pretrained='a.pth',
                 init_cfg=dict(type='Pretrained', checkpoint='b.pth'))
