"""mmdet 3.3's and mmseg 1.2's ResNet-family spellings of the core ResNet and RegNet.

Same networks and parameter names as ``mmcls.ResNet``/``ResNetV1c``/``ResNetV1d``/``ResNeXt``/
``RegNet``; the hosts' signatures and defaults, which differ from mmpretrain's: all four stages
out (``out_indices=(0, 1, 2, 3)``), mmdet's ``norm_eval=True`` and ``stem_channels=None``
(``= base_channels``), ResNeXt's ``groups=1``/``base_width=4``, and the hosts' own arguments
(``dcn``, ``stage_with_dcn``, ``plugins``, mmseg's ``multi_grid``/``contract_dilation``,
``pretrained``). ``frozen_stages`` means the same in all three libraries.
"""
from ..models.backbones.regnet import RegNet
from ..models.backbones.resnet import ResNet, ResNeXt
from ..registry import HOST_TWINS
from ..utils.validation import check_positive_int
from .signatures import REQUIRED, host_init, with_params

_NO_DCN = (False, False, False, False)
MMDET, MMSEG = HOST_TWINS['mmdet'], HOST_TWINS['mmseg']

# the hosts' signatures (mmdet 3.3's ResNet; mmseg's and both RegNets differ from it as written)
MMDET_RESNET = dict(
    depth=REQUIRED, in_channels=3, stem_channels=None, base_channels=64, num_stages=4,
    strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1), out_indices=(0, 1, 2, 3), style='pytorch',
    deep_stem=False, avg_down=False, frozen_stages=-1, conv_cfg=None,
    norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, dcn=None,
    stage_with_dcn=_NO_DCN, plugins=None, with_cp=False, zero_init_residual=True,
    pretrained=None, init_cfg=None)
MMSEG_RESNET = with_params(MMDET_RESNET, after='plugins', stem_channels=64, norm_eval=False,
                           multi_grid=None, contract_dilation=False)
MMDET_REGNET = with_params(
    {'arch': REQUIRED, **{k: v for k, v in MMDET_RESNET.items()
                          if k not in ('depth', 'num_stages')}},
    stem_channels=32, base_channels=32, strides=(2, 2, 2, 2))


def _to_core(core):
    """The translation every twin here shares: the core's arguments as they are, the hosts' own
    ones (``dcn``, ``stage_with_dcn``, ``plugins``, ``pretrained``, mmseg's ``multi_grid``/
    ``contract_dilation``) passed on only when they differ from the hosts' defaults."""

    def translate(self, dcn, stage_with_dcn, plugins, pretrained, multi_grid=None,
                  contract_dilation=False, **arguments):
        extras = _host_extras(dcn, stage_with_dcn, plugins, pretrained)
        if multi_grid is not None:
            extras['multi_grid'] = multi_grid
        if contract_dilation is not False:
            extras['contract_dilation'] = contract_dilation
        core.__init__(self, **arguments, **extras)

    return translate


def _mmdet_resnet(self, stem_channels, base_channels, **arguments):
    """mmdet's ``stem_channels=None`` is ``base_channels``."""
    _to_core(ResNet)(self, base_channels=base_channels,
                     stem_channels=base_channels if stem_channels is None else stem_channels,
                     **arguments)


@MMDET.register_module('ResNet')
class MMDetResNet(ResNet):
    """mmdet's ``ResNet(depth, in_channels, stem_channels, ...)``."""
    host = 'mmdet'
    __init__ = host_init(MMDET_RESNET, _mmdet_resnet)


@MMSEG.register_module('ResNet')
class MMSegResNet(ResNet):
    """mmseg's ``ResNet(depth, in_channels, stem_channels, ...)``."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_RESNET, _to_core(ResNet))


def _host_extras(dcn, stage_with_dcn, plugins, pretrained) -> dict:
    """The hosts' own arguments, passed on only when they differ from the hosts' defaults."""
    extras = {k: v for k, v in dict(dcn=dcn, plugins=plugins, pretrained=pretrained).items()
              if v is not None}
    try:
        default = tuple(stage_with_dcn) == _NO_DCN
    except TypeError:
        default = False  # refused by the core with its message
    if not default:
        extras['stage_with_dcn'] = stage_with_dcn
    return extras


# mmdet's/mmseg's ResNetV1c/ResNetV1d: the ResNet with fixed flags, which (as there) may not be
# given again
@MMDET.register_module('ResNetV1d')
class MMDetResNetV1d(MMDetResNet):
    """mmdet's ``ResNetV1d(**kwargs)``: ``ResNet(deep_stem=True, avg_down=True, **kwargs)``."""

    def __init__(self, **kwargs):
        super().__init__(deep_stem=True, avg_down=True, **kwargs)


@MMSEG.register_module('ResNetV1c')
class MMSegResNetV1c(MMSegResNet):
    """mmseg's ``ResNetV1c(**kwargs)``: ``ResNet(deep_stem=True, avg_down=False, **kwargs)``."""

    def __init__(self, **kwargs):
        super().__init__(deep_stem=True, avg_down=False, **kwargs)


@MMSEG.register_module('ResNetV1d')
class MMSegResNetV1d(MMSegResNet):
    """mmseg's ``ResNetV1d(**kwargs)``: ``ResNet(deep_stem=True, avg_down=True, **kwargs)``."""

    def __init__(self, **kwargs):
        super().__init__(deep_stem=True, avg_down=True, **kwargs)


class _HostResNeXt:
    """mmdet's/mmseg's ``ResNeXt(groups=1, base_width=4, **kwargs)`` over the core ResNeXt's
    grouped blocks (``base_width`` is mmpretrain's ``width_per_group``)."""
    arch_settings = ResNeXt.arch_settings
    make_res_layer = ResNeXt.make_res_layer

    def __init__(self, groups=1, base_width=4, **kwargs):
        self.groups = check_positive_int('groups', groups)
        self.width_per_group = check_positive_int('base_width', base_width)
        super().__init__(**kwargs)


@MMDET.register_module('ResNeXt')
class MMDetResNeXt(_HostResNeXt, MMDetResNet):
    __doc__ = _HostResNeXt.__doc__


@MMSEG.register_module('ResNeXt')
class MMSegResNeXt(_HostResNeXt, MMSegResNet):
    __doc__ = _HostResNeXt.__doc__


@MMDET.register_module('RegNet')
class MMDetRegNet(RegNet):
    """mmdet's ``RegNet(arch, in_channels, stem_channels, ...)``."""
    host = 'mmdet'
    __init__ = host_init(MMDET_REGNET, _to_core(RegNet))
