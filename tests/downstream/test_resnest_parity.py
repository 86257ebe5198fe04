"""ResNeSt against mmdet 3.3's and mmseg 1.2.2's own classes, Res2Net against mmdet's, through
the host twins (``mmbackbones.mmdet.ResNeSt``, ``mmbackbones.mmseg.ResNeSt``,
``mmbackbones.mmdet.Res2Net``): the native state dict loads with ``strict=True`` (the mmcv-era
deep stem and the stride-1 avg-down shortcut converted on load), equal outputs on the same
weights in eval and training mode, ``frozen_stages``/``norm_eval`` as upstream, mmdet's DCN in
Res2Net's scale convs."""
import importlib
import warnings

import pytest
import torch
from torch import nn

from ._common import require

require('mmseg')
require('mmdet')

from mmbackbones.compat import MMDetRes2Net, MMDetResNeSt, MMSegResNeSt  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

TWINS = {('mmdet', 'ResNeSt'): MMDetResNeSt, ('mmseg', 'ResNeSt'): MMSegResNeSt,
         ('mmdet', 'Res2Net'): MMDetRes2Net}
NARROW = dict(depth=50, stem_channels=16, base_channels=16)
CASES = [  # (host, type, kwargs)
    ('mmdet', 'ResNeSt', dict(NARROW)),
    ('mmdet', 'ResNeSt', dict(NARROW, groups=2, base_width=8, radix=4, avg_down_stride=False)),
    ('mmseg', 'ResNeSt', dict(NARROW, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                              contract_dilation=True)),
    ('mmseg', 'ResNeSt', dict(NARROW, multi_grid=(1, 2, 4), dilations=(1, 1, 1, 2),
                              strides=(1, 2, 2, 1))),
    ('mmdet', 'Res2Net', dict(NARROW, base_width=8)),
    ('mmdet', 'Res2Net', dict(NARROW, base_width=8, scales=8, style='caffe', deep_stem=False)),
]


def _native(host: str, kind: str, **kwargs):
    importlib.import_module(f'{host}.models')
    registry = importlib.import_module(f'{host}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return registry.build(dict(type=kind, _scope_=host, **kwargs))


def _pair(host: str, kind: str, **kwargs):
    native = _native(host, kind, **kwargs)
    perturb_(native)
    ours = TWINS[host, kind](**kwargs)
    assert len(ours.state_dict()) == len(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)  # converted on load
    return native, ours


def _ids(case):
    host, kind, kwargs = case
    return f'{host}-{kind}-' + '-'.join(f'{k}' for k in kwargs if k not in NARROW)


@pytest.mark.parametrize('case', CASES, ids=[_ids(c) for c in CASES])
def test_outputs_equal_in_eval(case):
    host, kind, kwargs = case
    native, ours = _pair(host, kind, **kwargs)
    native.eval()
    ours.eval()
    for size in ((64, 64), (45, 61)):
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert_outputs_close(native(x), ours(x))


@pytest.mark.parametrize('host,kind', list(TWINS), ids='-'.join)
def test_full_size_keys_match_after_conversion(host, kind):
    from mmbackbones.checkpoint.converters.openmmlab_resnet import convert_openmmlab_resnet
    native = _native(host, kind, depth=101, stem_channels=128) if kind == 'ResNeSt' else \
        _native(host, kind, depth=101)
    with torch.device('meta'):
        ours = TWINS[host, kind](depth=101, stem_channels=128) if kind == 'ResNeSt' else \
            TWINS[host, kind](depth=101)
    target = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    converted = convert_openmmlab_resnet(native.state_dict(), target=target)
    assert {k: tuple(v.shape) for k, v in converted.items()} == target
    # the other way: our names written back in the host's layout
    from mmbackbones.checkpoint.converters.openmmlab_resnet import revert_openmmlab_resnet
    assert set(revert_openmmlab_resnet(converted)) == set(native.state_dict())


def _flags(model: nn.Module):
    grads = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    return grads, modes


@pytest.mark.parametrize('host,kind', list(TWINS), ids='-'.join)
@pytest.mark.parametrize('frozen_stages', [-1, 0, 2, 4])
def test_frozen_stages_and_training_forward(host, kind, frozen_stages):
    extra = dict(base_width=8) if kind == 'Res2Net' else {}
    native, ours = _pair(host, kind, frozen_stages=frozen_stages, norm_eval=False, **NARROW,
                         **extra)
    native.train()
    ours.train()
    assert _flags(ours) == _flags(native)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert_outputs_close(native(x), ours(x))  # batch statistics where not frozen, as there


@pytest.mark.parametrize('host,kind', list(TWINS), ids='-'.join)
def test_defaults_and_norm_eval_as_upstream(host, kind):
    extra = dict(base_width=8) if kind == 'Res2Net' else {}
    native, ours = _pair(host, kind, **NARROW, **extra)
    assert ours.norm_eval == native.norm_eval == (host == 'mmdet')
    assert ours.out_indices == tuple(native.out_indices) == (0, 1, 2, 3)
    native.train()
    ours.train()
    assert _flags(ours) == _flags(native)


def test_host_flags_given_twice_and_res2net_ignored_flags():
    with pytest.raises(TypeError, match='deep_stem'):
        MMDetResNeSt(depth=50, deep_stem=False)
    with pytest.raises(TypeError, match='deep_stem'):
        _native('mmdet', 'ResNeSt', depth=50, deep_stem=False)
    # mmdet's Res2Net accepts style/deep_stem/avg_down and builds its one layout anyway
    native = _native('mmdet', 'Res2Net', depth=50, deep_stem=False, avg_down=False, **{
        k: v for k, v in NARROW.items() if k != 'depth'}, base_width=8)
    ours = MMDetRes2Net(depth=50, deep_stem=False, avg_down=False, stem_channels=16,
                        base_channels=16, base_width=8)
    assert ours.deep_stem and ours.avg_down and native.deep_stem and native.avg_down
    assert ours.stage_pool == 'strided' and ours.layer1[0].pool is None


def test_res2net_dcn_as_mmdet():
    kwargs = dict(NARROW, base_width=8, stage_with_dcn=(False, True, True, True),
                  dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False))
    native = _native('mmdet', 'Res2Net', **kwargs)
    perturb_(native)
    ours = MMDetRes2Net(**kwargs)
    ours.load_state_dict(native.state_dict(), strict=True)
    assert any('convs.0.conv_offset' in k for k in ours.state_dict())
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))
