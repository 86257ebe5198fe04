"""SSDVGG and HourglassNet against mmdet 3.3's own classes, VGG against mmpretrain's classifier
configs: identical keys, whole-detector (SSD, CornerNet) and whole-classifier state dicts loaded
with ``strict=True`` into the models with only the backbone ``type`` switched, equal outputs,
training-mode flags (mmdet's two classes have no ``frozen_stages``/``norm_eval``) as upstream."""
import glob
import os
import warnings

import pytest
import torch
from torch import nn

from ._common import require

mmdet = require('mmdet')

from mmbackbones.compat import MMDetHourglassNet, MMDetSSDVGG  # noqa: E402
from mmbackbones.models.backbones.vgg import VGG  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs')
TINY_HG = dict(downsample_times=2, stage_channels=(16, 16, 24), stage_blocks=(1, 1, 2),
               feat_channel=8)


def _native(name: str, **kwargs):
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type=name, _scope_='mmdet', **kwargs))


def _flags(model: nn.Module):
    return ({n: p.requires_grad for n, p in model.named_parameters()},
            {n: m.training for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)})


# ----- SSDVGG ------------------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs', [dict(depth=16), dict(depth=11, out_feature_indices=(14, 24)),
                                    dict(depth=16, out_feature_indices=(8, 15, 22, 35),
                                         with_last_pool=True, ceil_mode=False)])
def test_ssdvgg_keys_and_outputs_equal(kwargs):
    """(Where mmdet differs, on purpose: an index past the network is refused here, mmdet
    returns fewer outputs; an output read at a conv keeps the conv's values, where mmdet's
    next in-place ReLU overwrites it.)"""
    native = _native('SSDVGG', **kwargs)
    perturb_(native)
    ours = MMDetSSDVGG(**kwargs)
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    native.eval()
    ours.eval()
    for size in ((64, 64), (75, 61)):
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = native(x)
            assert_outputs_close(expected if isinstance(expected, tuple) else (expected, ),
                                 ours(x))
    native.train()
    ours.train()
    assert _flags(ours) == _flags(native)
    assert ours.init_cfg == native.init_cfg


def _detector(path: str, backbone_type=None, **backbone):
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(os.path.join(CONFIGS, path))
    cfg.model.backbone.update(backbone)
    if backbone_type is not None:
        cfg.model.backbone.type = backbone_type
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(cfg.model)


def test_whole_ssd300_detector_loads_strictly_and_matches():
    """mmdet's SSD300 (VGG-16, SSDNeck with its L2Norm, SSDHead): the whole state dict loads
    with strict=True into the same detector with the backbone type switched alone, and
    backbone + neck give the same features at 300 px."""
    native = _detector('ssd/ssd300_coco.py')
    perturb_(native)
    ours = _detector('ssd/ssd300_coco.py', 'mmbackbones.mmdet.SSDVGG')
    assert type(ours.backbone) is MMDetSSDVGG
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 300, 300, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_outputs_close(native.extract_feat(x), ours.extract_feat(x))


# ----- HourglassNet ------------------------------------------------------------------------------
@pytest.mark.parametrize('num_stacks', [1, 2, 3])
def test_hourglass_keys_and_outputs_equal_in_eval_and_training(num_stacks):
    native = _native('HourglassNet', num_stacks=num_stacks, **TINY_HG)
    perturb_(native)
    ours = MMDetHourglassNet(num_stacks=num_stacks, **TINY_HG)
    theirs = list(native.state_dict())
    if num_stacks == 1:  # mmdet builds one inters block that a single stack never runs
        theirs = [k for k in theirs if not k.startswith('inters.')]
    assert list(ours.state_dict()) == theirs
    # num_stacks=1: mmdet's unused inters.0 is reported as not built (strict=True allows no
    # exception, as for every family)
    ours.load_state_dict(native.state_dict(), strict=num_stacks > 1)
    native.train()
    ours.train()
    assert _flags(ours) == tuple(
        {k: v for k, v in d.items() if not k.startswith('inters.') or num_stacks > 1}
        for d in _flags(native))
    x = torch.randn(2, 3, 45, 61, generator=torch.Generator().manual_seed(3))
    assert_outputs_close(native(x), ours(x))  # batch statistics
    native.eval()
    ours.eval()
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))


def test_hourglass104_keys_identical():
    with torch.device('meta'):
        native = _native('HourglassNet')
        ours = MMDetHourglassNet()
    assert list(ours.state_dict()) == list(native.state_dict())
    assert ours.out_channels == (256, 256) and ours.out_strides == (4, 4)


def test_hourglass_init_cfg_refused_by_mmdet_allowed_here():
    with pytest.raises(AssertionError):
        _native('HourglassNet', init_cfg=dict(type='Kaiming'), **TINY_HG)
    assert MMDetHourglassNet(init_cfg=dict(type='Pretrained', checkpoint='x.pth'),
                             **TINY_HG).loads_pretrained()


def test_whole_cornernet_detector_loads_strictly_and_matches():
    """mmdet's CornerNet (CornerHead with corner pooling): a small hourglass (same in both,
    feat_channel 256 as the head expects) so the test stays light; the whole state dict loads
    with strict=True after switching the backbone type alone; equal backbone features."""
    small = dict(downsample_times=2, stage_channels=[32, 32, 48], stage_blocks=[1, 1, 1])
    native = _detector('cornernet/cornernet_hourglass104_8xb6-210e-mstest_coco.py', **small)
    perturb_(native)
    ours = _detector('cornernet/cornernet_hourglass104_8xb6-210e-mstest_coco.py',
                     'mmbackbones.mmdet.HourglassNet', **small)
    assert type(ours.backbone) is MMDetHourglassNet
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert_outputs_close(native.extract_feat(x), ours.extract_feat(x))
        expected, got = native.bbox_head(native.extract_feat(x)), ours.bbox_head(
            ours.extract_feat(x))
    for e, g in zip(expected, got):
        assert_outputs_close(e, g)


# ----- mmpretrain's VGG classifier configs -------------------------------------------------------
def _mmpretrain_vgg_configs():
    mmpretrain = pytest.importorskip('mmpretrain', reason='mmpretrain is not installed here')
    root = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'configs', 'vgg')
    return sorted(glob.glob(os.path.join(root, '*.py')))


def _classifier(path: str, backbone_type=None, device='cpu'):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(path)
    if backbone_type is not None:
        cfg.model.backbone.type = backbone_type
    with torch.device(device), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(cfg.model)


def test_every_mmpretrain_vgg_config_switches_by_type():
    """mmpretrain's 9 VGG configs (ImageNet, VOC): the classifier with ``mmcls.VGG`` has the
    same state dict keys (so its published checkpoints load whole)."""
    paths = _mmpretrain_vgg_configs()
    assert len(paths) >= 9
    for path in paths:
        native = _classifier(path, device='meta')
        ours = _classifier(path, 'mmcls.VGG', device='meta')
        assert type(ours.backbone) is VGG, path
        assert list(ours.state_dict()) == list(native.state_dict()), path


def test_mmpretrain_vgg11_classifier_loads_strictly_and_matches():
    path = [p for p in _mmpretrain_vgg_configs() if p.endswith('vgg11_8xb32_in1k.py')][0]
    native = _classifier(path)
    perturb_(native)
    ours = _classifier(path, 'mmcls.VGG')
    ours.load_state_dict(native.state_dict(), strict=True)
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_outputs_close(native(x, mode='tensor'), ours(x, mode='tensor'))
