"""One ``frozen_stages`` rule for every family (CONTRIBUTING.md, point 3).

``frozen_stages`` is checked against the architecture's stage count, never against
``out_indices``: the stages past the last output are not built, and freezing them is a no-op
(mmpretrain builds them and freezes them; nothing it freezes reaches an output we return). The
fuzzer found the ViT refusing ``out_indices=(0,)`` with ``frozen_stages=2`` (issue 28): every
family here accepts, with its first stage as the only output, the largest ``frozen_stages`` it
accepts for the full network, and refuses the next one in both builds.
"""
import warnings

import pytest
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones import build_backbone
from tests.test_fuzz import VALID

_TINY_VIT = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
_TWINS = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
              patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2], mlp_ratios=[2, 2, 2, 2],
              sr_ratios=[8, 4, 2, 1])
# the wrappers, SSDVGG (as mmdet's) and STDC's context path (its STDCNet has it) have no
# frozen_stages; 'vit_archs' (DINOv2-S, 12 layers) is 'vit_dinov2' small
NO_FROZEN_STAGES = ('timm', 'torchvision', 'vit_archs', 'ssd_vgg', 'stdc_context_path')
CONFIGS = {k: v for k, v in VALID.items() if k not in NO_FROZEN_STAGES}
CONFIGS.update({
    'vit3': dict(type='VisionTransformer', arch=_TINY_VIT, img_size=32, patch_size=8,
                 out_type='avg_featmap'),
    'vit_dinov2': dict(type='VisionTransformer', arch=_TINY_VIT, img_size=28, patch_size=14,
                       layer_scale_init_value=1e-5, num_register_tokens=2),
    'eva02': dict(type='ViTEVA02', arch=_TINY_VIT, img_size=32, patch_size=8),
    'mit': dict(type='MixVisionTransformer', embed_dims=8, num_layers=[1, 1, 1, 1],
                num_heads=[1, 1, 1, 1]),
    'pcpvt': dict(type='PCPVT', arch=_TWINS),
    'pvt_v1': dict(type='PyramidVisionTransformer', embed_dims=8, num_layers=[1, 1, 1, 1]),
    'poolformer': dict(type='PoolFormer', arch=dict(layers=[1, 1, 1, 1],
                                                   embed_dims=[8, 16, 24, 32],
                                                   mlp_ratios=[4, 4, 4, 4],
                                                   layer_scale_init_value=1e-5)),
})
# (number of stages out_indices counts, the largest frozen_stages): the family's own count
# (mmpretrain's for Swin and the CSP nets: k freezes the stem and stages[0..k])
TOPS = {
    'resnet': (4, 4), 'resnext': (4, 4), 'vit': (2, 2), 'vit3': (3, 3), 'vit_dinov2': (3, 3),
    'eva02': (3, 3), 'convnext': (4, 4), 'swin': (4, 3), 'regnet': (4, 4), 'csp': (5, 4),
    'hrnet': (4, 4), 'yolo_csp': (5, 4), 'darknet': (6, 5), 'focalnet': (4, 4),
    'mscan': (4, 4), 'beit': (2, 2), 'mobilenet_v2': (8, 7), 'mobilenet_v3': (13, 12),
    'efficientnet': (7, 7), 'efficientnet_v2': (8, 8), 'pvt': (4, 4), 'twins': (4, 4),
    'resnest': (4, 4), 'res2net': (4, 4), 'mit': (4, 4), 'pcpvt': (4, 4), 'pvt_v1': (4, 4),
    'poolformer': (4, 4), 'detectors': (4, 4), 'trident': (3, 3), 'hourglass': (2, 2),
    'internimage': (4, 4), 'stdc': (5, 5), 'vgg': (5, 5), 'vitdet': (4, 4),
}


def _build(cfg, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return build_backbone(dict(cfg, **kwargs))


def test_every_native_family_is_listed():
    assert set(CONFIGS) <= set(TOPS), sorted(set(CONFIGS) - set(TOPS))


@pytest.mark.parametrize('family', sorted(TOPS))
def test_frozen_stages_past_the_built_stages_is_a_no_op(family):
    cfg = CONFIGS[family]
    num, top = TOPS[family]
    full = _build(cfg, out_indices=tuple(range(num)), frozen_stages=top)
    first = _build(cfg, out_indices=(0,), frozen_stages=top).train()
    assert first.frozen_stages == full.frozen_stages
    built = [m for m in first.stem_and_stages() if m is not None]
    if family != 'hrnet':  # HRNet's every branch leaves its last stage: all stages built
        assert len(built) < len([m for m in full.stem_and_stages() if m is not None])
    for module in built:  # everything built up to the (only) output is frozen
        assert all(not p.requires_grad for p in module.parameters()), (family, module)
        assert all(not m.training for m in module.modules() if isinstance(m, _BatchNorm))
    for out_indices in (tuple(range(num)), (0,)):  # one past the top: refused in both
        with pytest.raises(ValueError, match='frozen_stages'):
            _build(cfg, out_indices=out_indices, frozen_stages=top + 1)
