"""mmdet 3.3's ``PyramidVisionTransformer`` and ``PyramidVisionTransformerV2``
(``mmbackbones.mmdet.PyramidVisionTransformer(V2)``).

The core :class:`~mmbackbones.models.backbones.pvt.PyramidVisionTransformer` already has mmdet's
signature, defaults and parameter names (mmdet is PVT's only OpenMMLab host); the twins take
exactly mmdet's arguments (not our ``frozen_stages``/``norm_eval``/``with_cp``/``arch``) and
build it. ``PyramidVisionTransformerV2(**kwargs)`` fixes v2's five flags, which may not be given
again, as in mmdet.
"""
from ..models.backbones.pvt import MMDET_PVT_PARAMS, V2_FIXED, PyramidVisionTransformer
from ..registry import HOST_TWINS
from .signatures import host_init


def _translate(self, **arguments):
    """mmdet's arguments, as mmdet means them, build the core PVT."""
    PyramidVisionTransformer.__init__(self, **arguments)


@HOST_TWINS['mmdet'].register_module('PyramidVisionTransformer')
class MMDetPyramidVisionTransformer(PyramidVisionTransformer):
    """mmdet's ``PyramidVisionTransformer(pretrain_img_size, ...)``."""
    host = 'mmdet'
    __init__ = host_init(MMDET_PVT_PARAMS, _translate)


@HOST_TWINS['mmdet'].register_module('PyramidVisionTransformerV2')
class MMDetPyramidVisionTransformerV2(MMDetPyramidVisionTransformer):
    """mmdet's ``PyramidVisionTransformerV2(**kwargs)``: the v1 class with
    ``patch_sizes=[7, 3, 3, 3]``, ``paddings=[3, 1, 1, 1]``, ``use_abs_pos_embed=False``,
    ``norm_after_stage=True``, ``use_conv_ffn=True``."""
    arch_settings = PyramidVisionTransformer.arch_settings

    def __init__(self, **kwargs):
        super().__init__(**V2_FIXED, **kwargs)
