"""mmcv's layer builders, imported on first use.

``mmcv.cnn`` imports ``mmcv.image`` and with it OpenCV (about half a second): importing these
wrappers costs nothing, so ``import mmbackbones.models`` stays free of ``cv2`` and a model that
is built pays for mmcv once. Same arguments and results as ``mmcv.cnn``'s functions.
"""


def build_conv_layer(*args, **kwargs):
    from mmcv.cnn import build_conv_layer as build
    return build(*args, **kwargs)


def build_norm_layer(*args, **kwargs):
    from mmcv.cnn import build_norm_layer as build

    from ...registry import register_all_modules
    register_all_modules()  # our FrozenBN/LN2d live in mmengine's root registry, where mmcv looks
    return build(*args, **kwargs)


def build_activation_layer(*args, **kwargs):
    from mmcv.cnn import build_activation_layer as build
    return build(*args, **kwargs)


def ConvModule(*args, **kwargs):  # noqa: N802 - mmcv's class name, built through here
    from mmcv.cnn import ConvModule as Module
    return Module(*args, **kwargs)
