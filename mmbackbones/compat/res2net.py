"""mmdet 3.3's ``Res2Net`` (``mmbackbones.mmdet.Res2Net``): the core
:class:`~mmbackbones.models.backbones.res2net.Res2Net` with mmdet's signature
``Res2Net(scales=4, base_width=26, style='pytorch', deep_stem=True, avg_down=True,
pretrained=None, init_cfg=None, **kwargs)`` and meanings: ``style``, ``deep_stem`` and
``avg_down`` are accepted and ignored (always ``'pytorch'``, True, True), ``kwargs`` are mmdet's
``ResNet`` arguments (``depth``, all four stages out, ``norm_eval=True``, ``dcn`` on every scale
conv of the flagged stages), and the first block of a stage pools its last split only at stride 2
(``stage_pool='strided'``). mmdet's checkpoints (mmcv-era deep stem) convert on load.
"""
from ..models.backbones.res2net import Res2Net
from ..registry import HOST_TWINS
from .resnet import MMDetResNet


@HOST_TWINS['mmdet'].register_module('Res2Net')
class MMDetRes2Net(MMDetResNet, Res2Net):
    """mmdet's ``Res2Net(scales, base_width, style, deep_stem, avg_down, pretrained, init_cfg,
    **kwargs)``."""

    def __init__(self, scales=4, base_width=26, style='pytorch', deep_stem=True, avg_down=True,
                 pretrained=None, init_cfg=None, **kwargs):
        self._set_scales(scales, base_width, 'strided')
        MMDetResNet.__init__(self, style='pytorch', deep_stem=True, avg_down=True,
                             pretrained=pretrained, init_cfg=init_cfg, **kwargs)
