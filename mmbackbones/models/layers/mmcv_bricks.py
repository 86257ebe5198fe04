"""mmcv's layer builders, imported on first use.

``mmcv.cnn`` imports ``mmcv.image`` and with it OpenCV (about half a second): importing these
wrappers costs nothing, so ``import mmbackbones.models`` stays free of ``cv2`` and a model that
is built pays for mmcv once. Same arguments and results as ``mmcv.cnn``'s functions, with one
substitution: a plain 1x1 strided ``nn.Conv2d`` is built as its subclass
:class:`~.conv.StridedPointwiseConv2d` (same parameters and outputs, a faster CPU kernel).
"""
import inspect

from torch import nn

_PLAIN_CONV_TYPES = ('Conv', 'Conv2d', nn.Conv2d)


def build_conv_layer(cfg, *args, **kwargs):
    from mmcv.cnn import build_conv_layer as build
    if cfg is None or (isinstance(cfg, dict) and len(cfg) == 1 and
                       cfg.get('type') in _PLAIN_CONV_TYPES):
        from .conv import StridedPointwiseConv2d, is_strided_pointwise
        try:
            bound = inspect.signature(nn.Conv2d).bind(*args, **kwargs).arguments
        except TypeError:  # mmcv raises the same error, in its words
            bound = {}
        if bound and is_strided_pointwise(bound.get('kernel_size'), bound.get('stride', 1),
                                          bound.get('padding', 0),
                                          bound.get('padding_mode', 'zeros')):
            return StridedPointwiseConv2d(*args, **kwargs)
    return build(cfg, *args, **kwargs)


def build_norm_layer(*args, **kwargs):
    # our FrozenBN/LN2d are in mmengine's root registry, where mmcv looks, since norm.py and
    # layer_norm2d.py (which import this module) registered them
    from mmcv.cnn import build_norm_layer as build
    return build(*args, **kwargs)


def build_activation_layer(*args, **kwargs):
    from mmcv.cnn import build_activation_layer as build
    return build(*args, **kwargs)


def ConvModule(*args, **kwargs):  # noqa: N802 - mmcv's class name, built through here
    from mmcv.cnn import ConvModule as Module
    return Module(*args, **kwargs)
