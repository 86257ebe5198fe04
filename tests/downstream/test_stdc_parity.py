"""STDC against mmseg 1.2.2's own ``STDCNet`` and ``STDCContextPathNet``: identical keys, equal
outputs on the same weights in eval and training mode (odd sizes, 'cat' and 'add' blocks,
STDC1/STDC2), equal gradients, the whole mmseg STDC segmentor's checkpoint loading strictly into
the segmentor whose backbone type alone is switched, mmseg's ImageNet STDC checkpoint layout,
and the nested ``backbone_cfg`` type under mmseg's default scope."""
import importlib.util
import os
import warnings

import pytest
import torch

from ._common import require

mmseg = require('mmseg')

from mmbackbones.compat.stdc import MMSegSTDCContextPathNet, MMSegSTDCNet  # noqa: E402
from mmbackbones.models.backbones.stdc import STDCContextPathNet, STDCNet  # noqa: E402
from tests.parity import assert_outputs_close, perturb_, randomize_batchnorm_  # noqa: E402

MIM = os.path.join(os.path.dirname(mmseg.__file__), '.mim')
NET = dict(stdc_type='STDCNet1', in_channels=3, channels=(32, 64, 256, 512, 1024),
           bottleneck_type='cat', num_convs=4, norm_cfg=dict(type='BN', requires_grad=True),
           act_cfg=dict(type='ReLU'), with_final_conv=False)
TINY = dict(NET, channels=(8, 16, 32, 64, 64))
PATH = dict(last_in_channels=(64, 64), out_channels=16,
            ffm_cfg=dict(in_channels=48, out_channels=32, scale_factor=4))
FULL_PATH = dict(last_in_channels=(1024, 512), out_channels=128,
                 ffm_cfg=dict(in_channels=384, out_channels=256, scale_factor=4))


def _native(kind: str, **kwargs):
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type=kind, _scope_='mmseg', **kwargs))


def _ours(kind: str, **kwargs):
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type=f'mmbackbones.mmseg.{kind}', **kwargs))


def _pair(kind: str, **kwargs):
    native = _native(kind, **kwargs)
    native.init_weights()
    perturb_(native)
    randomize_batchnorm_(native)
    ours = _ours(kind, **kwargs)
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    return native, ours


def _variants():
    return [(t, b) for t in ('STDCNet1', 'STDCNet2') for b in ('cat', 'add')]


@pytest.mark.parametrize('stdc_type,bottleneck_type', _variants())
def test_keys_identical_at_full_size(stdc_type, bottleneck_type):
    net = dict(NET, stdc_type=stdc_type, bottleneck_type=bottleneck_type, with_final_conv=True)
    cfg = dict(backbone_cfg=dict(NET, type='STDCNet', stdc_type=stdc_type,
                                 bottleneck_type=bottleneck_type), **FULL_PATH)
    with torch.device('meta'):
        pairs = [(_native('STDCNet', **net), _ours('STDCNet', **net)),
                 (_native('STDCContextPathNet', **cfg), _ours('STDCContextPathNet', **cfg))]
        core = STDCNet(**net, out_indices=(2, 3, 4))
    for native, ours in pairs:
        assert list(ours.state_dict()) == list(native.state_dict())
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: v.shape for k, v in native.state_dict().items()}
    assert list(core.state_dict()) == list(pairs[0][0].state_dict())


@pytest.mark.parametrize('stdc_type,bottleneck_type', _variants())
@pytest.mark.parametrize('size', [(64, 64), (45, 61)])
def test_outputs_equal_in_eval_and_training(stdc_type, bottleneck_type, size):
    net = dict(TINY, stdc_type=stdc_type, bottleneck_type=bottleneck_type)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    for kind, kwargs in (('STDCNet', dict(net, with_final_conv=True)),
                         ('STDCContextPathNet', dict(backbone_cfg=dict(net, type='STDCNet'),
                                                     **PATH))):
        native, ours = _pair(kind, **kwargs)
        for mode in ('eval', 'train'):
            getattr(native, mode)()
            getattr(ours, mode)()
            with torch.no_grad():
                assert_outputs_close(native(x), ours(x))


def test_training_gradients_equal():
    native, ours = _pair('STDCContextPathNet', backbone_cfg=dict(TINY, type='STDCNet'),
                         upsample_mode='bilinear', align_corners=False, **PATH)
    native.train()
    ours.train()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    a, b = native(x), ours(x)
    assert_outputs_close(a, b)
    sum(o.square().mean() for o in a).backward()
    sum(o.square().mean() for o in b).backward()
    for (name, p), q in zip(native.named_parameters(), ours.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def _segmentor(backbone_type=None):
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(os.path.join(MIM, 'configs', 'stdc',
                                       'stdc1_4xb12-80k_cityscapes-512x1024.py'))
    if backbone_type is not None:
        cfg.model.backbone.type = backbone_type
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(cfg.model)


def test_whole_segmentor_checkpoint_loads_strictly_with_the_type_switched(tmp_path):
    """mmseg's STDC1 segmentor (backbone, FCN decode head, three auxiliary heads, the detail
    head): its whole-model checkpoint loads with ``strict=True`` into the segmentor built from
    the same config with ``backbone.type`` alone switched; equal logits and features."""
    from mmengine.runner import load_checkpoint
    native = _segmentor()
    perturb_(native)
    randomize_batchnorm_(native)
    path = str(tmp_path / 'stdc1_cityscapes.pth')
    torch.save({'meta': {}, 'state_dict': native.state_dict()}, path)
    ours = _segmentor('mmbackbones.mmseg.STDCContextPathNet')
    assert type(ours.backbone) is MMSegSTDCContextPathNet
    assert type(ours.backbone.backbone) is MMSegSTDCNet  # the nested type, in mmseg's scope
    load_checkpoint(ours, path, map_location='cpu', strict=True, logger='silent')
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert_outputs_close(native.extract_feat(x), ours.extract_feat(x))
        assert_outputs_close(native._forward(x), ours._forward(x))


def test_mmseg_imagenet_checkpoint_layout(tmp_path):
    """mmseg's ImageNet STDC files (``stdc{1,2}_20220308-*.pth``, what the in1k-pre configs
    load into ``backbone_cfg``) are a plain state dict of mmseg's ``STDCNet`` names, written by
    its ``stdc2mmseg.py`` from the official release: our STDCNet has those names, and our
    converter of the official layout agrees with mmseg's script."""
    spec = importlib.util.spec_from_file_location(
        'stdc2mmseg', os.path.join(MIM, 'tools', 'model_converters', 'stdc2mmseg.py'))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from mmbackbones.checkpoint.converters.official_stdc import (convert_official_stdc,
                                                                 revert_official_stdc)
    for stdc_type, name in (('STDCNet1', 'STDC1'), ('STDCNet2', 'STDC2')):
        native = _native('STDCNet', **dict(TINY, stdc_type=stdc_type, with_final_conv=True))
        perturb_(native)
        official = revert_official_stdc(native.state_dict())
        official.update({'fc.weight': torch.zeros(4, 4), 'linear.weight': torch.zeros(2, 4)})
        theirs, ours = script.convert_stdc(official, name), convert_official_stdc(official)
        assert set(ours) - set(theirs) == {k for k in ours if k.startswith('final_conv.')}
        assert all(torch.equal(ours[k], v) for k, v in theirs.items())
        # the converted file, as mmseg publishes it, into both through Pretrained
        path = str(tmp_path / f'{name}.pth')
        torch.save(theirs, path)
        init = dict(type='Pretrained', checkpoint=path)
        cfg = dict(TINY, stdc_type=stdc_type, init_cfg=init)
        a, b = _native('STDCNet', **cfg), _ours('STDCNet', **cfg)
        a.init_weights()
        b.init_weights()
        a.eval()
        b.eval()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert_outputs_close(a(x), b(x))


def test_nested_type_under_mmsegs_default_scope_and_a_foreign_backbone():
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    import mmbackbones  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmseg'):
        twin = MODELS.build(dict(type='mmbackbones.mmseg.STDCContextPathNet',
                                 backbone_cfg=dict(TINY, type='STDCNet'), **PATH))
        core = MODELS.build(dict(type='mmbackbones.STDCContextPathNet',
                                 backbone_cfg=dict(type='STDCNet', channels=TINY['channels']),
                                 **PATH))
        assert type(twin.backbone) is MMSegSTDCNet and type(core.backbone) is STDCNet
        with pytest.raises(TypeError, match='backbone_cfg must build one of our backbones'):
            STDCContextPathNet(backbone_cfg=dict(TINY, type='STDCNet', _scope_='mmseg'), **PATH)


def test_pretrained_and_init_cfg_as_mmseg():
    native = _native('STDCNet', **TINY, init_cfg=dict(type='Pretrained', checkpoint='a.pth'))
    ours = _ours('STDCNet', **TINY, init_cfg=dict(type='Pretrained', checkpoint='a.pth'))
    assert ours.init_cfg == native.init_cfg
    with pytest.warns(UserWarning, match='deprecated'):
        twin = MMSegSTDCNet(**TINY, pretrained='a.pth')
    # mmseg 1.2.2 stores pretrained (self.prtrained) and never loads it; ours loads it
    assert twin.init_cfg == dict(type='Pretrained', checkpoint='a.pth')
    assert _native('STDCNet', **TINY, pretrained='a.pth').prtrained == 'a.pth'
    native_path = _native('STDCContextPathNet', backbone_cfg=dict(TINY, type='STDCNet'), **PATH)
    ours_path = _ours('STDCContextPathNet', backbone_cfg=dict(TINY, type='STDCNet'), **PATH)
    assert ours_path.init_cfg == native_path.init_cfg
    assert sum(p.numel() for p in ours_path.parameters()) == \
        sum(p.numel() for p in native_path.parameters())
    assert issubclass(MMSegSTDCContextPathNet, STDCContextPathNet)
