"""mmdet 3.3's and mmseg 1.2's ``ResNeSt`` (``mmbackbones.mmdet.ResNeSt``,
``mmbackbones.mmseg.ResNeSt``): the core :class:`~mmbackbones.models.backbones.resnest.ResNeSt`
with the hosts' signature ``ResNeSt(groups=1, base_width=4, radix=2, reduction_factor=4,
avg_down_stride=True, **kwargs)``, where ``kwargs`` are the host's ``ResNet`` arguments (their
defaults: all four stages out, mmdet's ``norm_eval=True``/``stem_channels=None``, ``dcn``,
``plugins``, mmseg's ``multi_grid``/``contract_dilation``) and ``deep_stem``/``avg_down`` are
given by the class (giving them again is a ``TypeError``, as there). Depths 50, 101, 152, 200.

The hosts' checkpoints name the deep stem the mmcv-era way (``stem.0/1/3/4/6/7``); they are
converted on load (``checkpoint.converters.openmmlab_resnet``), the blocks' keys are the same.
"""
from ..models.backbones.resnest import ResNeSt
from ..registry import HOST_TWINS
from .resnet import MMDetResNet, MMSegResNet


class _HostResNeSt:
    """The hosts' ``ResNeSt.__init__``: block arguments here, the rest to the host's ResNet."""
    arch_settings = {k: v for k, v in ResNeSt.arch_settings.items() if k in (50, 101, 152, 200)}

    def __init__(self, groups=1, base_width=4, radix=2, reduction_factor=4,
                 avg_down_stride=True, **kwargs):
        self._set_split_attention(groups, base_width, radix, reduction_factor, avg_down_stride,
                                  'base_width')
        super().__init__(deep_stem=True, avg_down=True, **kwargs)


@HOST_TWINS['mmdet'].register_module('ResNeSt')
class MMDetResNeSt(_HostResNeSt, MMDetResNet, ResNeSt):
    __doc__ = _HostResNeSt.__doc__


@HOST_TWINS['mmseg'].register_module('ResNeSt')
class MMSegResNeSt(_HostResNeSt, MMSegResNet, ResNeSt):
    __doc__ = _HostResNeSt.__doc__
