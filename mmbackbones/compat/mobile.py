"""mmseg 1.2's ``MobileNetV2``/``MobileNetV3`` and mmdet 3.3's ``MobileNetV2``/``EfficientNet``
spellings of the core mobile networks (no second network here).

* mmseg ``MobileNetV2``: mmpretrain's network and names without the final ``conv2``
  (``out_indices`` 0..6), with per-stage ``strides``/``dilations`` (the core's extras), outputs
  ``(1, 2, 4, 6)`` by default.
* The MobileNet twins build every stage their host builds (``built_stages``), also past the
  last output, so the hosts' whole-model checkpoints load strictly; those stages never run.
* mmdet ``MobileNetV2``: mmpretrain's network, outputs ``(1, 2, 4, 7)``; its checkpoints name
  the block convs ``expand_conv``/``depthwise_conv``/``linear_conv`` and load through the
  ``mmdet_mobilenet_v2`` converter on every load route (the state dict stays in our names).
* mmseg ``MobileNetV3``: ``'small'``/``'large'``, BN ``eps=1e-5``, ``'same'`` padding on the
  stem and stride-2 depthwise convs (``tf_padding=True``), output stride 8 (its last two
  downsamplings dilate), ``reduction_factor``, outputs ``(0, 1, 12)``.
* mmdet ``EfficientNet``: mmpretrain's network (no ``'l2'``) whose EdgeTPU blocks stride in
  their 1x1 conv (``edge_residual_stride='conv2'``).

All: ``pretrained`` (a checkpoint string, deprecated) means a Pretrained ``init_cfg``;
``init_cfg=None`` means the hosts' Kaiming/constant init. Outputs are tuples (mmseg returns a
list, and one tensor alone for a single MobileNetV2 output).
"""
from ..models.backbones.efficientnet import EfficientNet
from ..models.backbones.mobilenet_v2 import MobileNetV2
from ..models.backbones.mobilenet_v3 import MobileNetV3
from ..registry import HOST_TWINS
from ..utils.validation import check_choice
from .signatures import host_init

MMDET, MMSEG = HOST_TWINS['mmdet'], HOST_TWINS['mmseg']
_INIT = [dict(type='Kaiming', layer='Conv2d'),
         dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]

MMSEG_MOBILENET_V2 = dict(
    widen_factor=1.0, strides=(1, 2, 2, 2, 1, 2, 1), dilations=(1, 1, 1, 1, 1, 1, 1),
    out_indices=(1, 2, 4, 6), frozen_stages=-1, conv_cfg=None, norm_cfg=dict(type='BN'),
    act_cfg=dict(type='ReLU6'), norm_eval=False, with_cp=False, pretrained=None, init_cfg=None)
MMDET_MOBILENET_V2 = {k: v for k, v in MMSEG_MOBILENET_V2.items()
                      if k not in ('strides', 'dilations')}
MMDET_MOBILENET_V2['out_indices'] = (1, 2, 4, 7)
MMSEG_MOBILENET_V3 = dict(
    arch='small', conv_cfg=None, norm_cfg=dict(type='BN'), out_indices=(0, 1, 12),
    frozen_stages=-1, reduction_factor=1, norm_eval=False, with_cp=False, pretrained=None,
    init_cfg=None)
MMDET_EFFICIENTNET = dict(
    arch='b0', drop_path_rate=0.0, out_indices=(6, ), frozen_stages=0,
    conv_cfg=dict(type='Conv2dAdaptivePadding'), norm_cfg=dict(type='BN', eps=0.001),
    act_cfg=dict(type='Swish'), norm_eval=False, with_cp=False, init_cfg=[
        dict(type='Kaiming', layer='Conv2d'),
        dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1)])


def _init_cfg(pretrained, init_cfg):
    """The hosts' ``init_cfg``: ``pretrained`` -> Pretrained (both given: refused), neither ->
    the Kaiming/constant init."""
    from ..models.base import BaseBackbone
    if pretrained is None and init_cfg is None:
        return [dict(c) for c in _INIT]
    return BaseBackbone._pretrained_to_init_cfg(pretrained, init_cfg)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _mmseg_mobilenet_v2(self, out_indices, pretrained, init_cfg, **arguments):
    """mmseg's ``MobileNetV2(widen_factor, strides, dilations, ...)``: stages 0..6 only."""
    indices = _as_tuple(out_indices)
    for index in indices if isinstance(indices, tuple) else (indices, ):
        check_choice('each of out_indices (mmseg MobileNetV2: layer1..layer7)', index, range(7))
    MobileNetV2.__init__(self, out_indices=indices, init_cfg=_init_cfg(pretrained, init_cfg),
                         built_stages=7, **arguments)


def _mmdet_mobilenet_v2(self, pretrained, init_cfg, **arguments):
    """mmdet's ``MobileNetV2(widen_factor, out_indices, ...)``."""
    MobileNetV2.__init__(self, init_cfg=_init_cfg(pretrained, init_cfg), built_stages=8,
                         **arguments)


def _mmseg_mobilenet_v3(self, arch, pretrained, init_cfg, **arguments):
    """mmseg's ``MobileNetV3(arch, ...)``: 'same' padding, output stride 8."""
    check_choice('arch (mmseg MobileNetV3)', arch, ('small', 'large'))
    MobileNetV3.__init__(self, arch=arch, tf_padding=True, output_stride=8,
                         built_stages=len(MobileNetV3.arch_settings[arch]) + 2,
                         init_cfg=_init_cfg(pretrained, init_cfg), **arguments)


def _mmdet_efficientnet(self, arch, **arguments):
    """mmdet's ``EfficientNet(arch, ...)``: no 'l2', EdgeTPU blocks stride in ``conv2``."""
    check_choice('arch (mmdet EfficientNet)', arch,
                 [a for a in EfficientNet.arch_settings if a != 'l2'])
    EfficientNet.__init__(self, arch=arch, edge_residual_stride='conv2', **arguments)


@MMSEG.register_module('MobileNetV2')
class MMSegMobileNetV2(MobileNetV2):
    """mmseg's ``MobileNetV2``."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_MOBILENET_V2, _mmseg_mobilenet_v2)


@MMDET.register_module('MobileNetV2')
class MMDetMobileNetV2(MobileNetV2):
    """mmdet's ``MobileNetV2``."""
    host = 'mmdet'
    __init__ = host_init(MMDET_MOBILENET_V2, _mmdet_mobilenet_v2)


@MMSEG.register_module('MobileNetV3')
class MMSegMobileNetV3(MobileNetV3):
    """mmseg's ``MobileNetV3``."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_MOBILENET_V3, _mmseg_mobilenet_v3)


@MMDET.register_module('EfficientNet')
class MMDetEfficientNet(EfficientNet):
    """mmdet's ``EfficientNet``."""
    host = 'mmdet'
    __init__ = host_init(MMDET_EFFICIENTNET, _mmdet_efficientnet)


__all__ = ['MMSegMobileNetV2', 'MMDetMobileNetV2', 'MMSegMobileNetV3', 'MMDetEfficientNet']
