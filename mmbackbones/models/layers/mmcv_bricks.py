"""mmcv's layer builders, imported on first use.

``mmcv.cnn`` imports ``mmcv.image`` and with it OpenCV (about half a second): importing these
wrappers costs nothing, so ``import mmbackbones.models`` stays free of ``cv2`` and a model that
is built pays for mmcv once. Same arguments and results as ``mmcv.cnn``'s functions; a plain
``nn.Conv2d`` takes its CPU fast class when the switch of ``layers/conv.py`` says so (a strided
1x1 conv becomes :class:`~.conv.StridedPointwiseConv2d`: same parameters and outputs).
"""
from torch import nn

_PLAIN_CONV_TYPES = ('Conv', 'Conv2d', nn.Conv2d)


def build_conv_layer(cfg, *args, **kwargs):
    from mmcv.cnn import build_conv_layer as build

    from .conv import fast_class
    conv = build(cfg, *args, **kwargs)
    plain = cfg is None or (isinstance(cfg, dict) and len(cfg) == 1 and
                            cfg.get('type') in _PLAIN_CONV_TYPES)
    if plain and isinstance(conv, nn.Conv2d):  # nn.Conv2d or mmcv's same-math wrapper
        fast = fast_class(nn.Conv2d, conv)
        if fast is not nn.Conv2d:
            conv.__class__ = fast
    return conv


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
