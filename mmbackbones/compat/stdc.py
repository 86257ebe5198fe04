"""mmseg 1.2.2's ``STDCNet`` and ``STDCContextPathNet`` (``mmbackbones.mmseg.STDCNet``,
``mmbackbones.mmseg.STDCContextPathNet``): mmseg's exact signatures over the core classes of
:mod:`mmbackbones.models.backbones.stdc`, whose arguments are mmseg's plus keyword-only extras,
here at their defaults (STDCNet: stages 3-5 out, nothing frozen, as mmseg).

* ``STDCNet``: mmseg requires ``stdc_type``, ``in_channels``, ``channels``,
  ``bottleneck_type``, ``norm_cfg`` and ``act_cfg`` (the core gives them its shipped config's
  values as defaults). ``pretrained`` means a Pretrained ``init_cfg`` (mmseg 1.2.2 stores it in
  ``self.prtrained`` and never loads it).
* ``STDCContextPathNet``: an unscoped ``backbone_cfg`` type is read in the mmseg twins' scope
  first, so the shipped ``backbone_cfg=dict(type='STDCNet', stdc_type=..., ...)`` (mmseg's
  signature) builds ``mmbackbones.mmseg.STDCNet`` under any default scope, when only the outer
  type is switched; a scoped type means what it says.
"""
from ..models.backbones.stdc import STDCContextPathNet, STDCNet
from ..registry import HOST_TWINS
from .signatures import REQUIRED, host_init

MMSEG = HOST_TWINS['mmseg']
MMSEG_STDCNET = dict(
    stdc_type=REQUIRED, in_channels=REQUIRED, channels=REQUIRED, bottleneck_type=REQUIRED,
    norm_cfg=REQUIRED, act_cfg=REQUIRED, num_convs=4, with_final_conv=False, pretrained=None,
    init_cfg=None)
MMSEG_STDC_CONTEXT_PATH = dict(
    backbone_cfg=REQUIRED, last_in_channels=(1024, 512), out_channels=128,
    ffm_cfg=dict(in_channels=512, out_channels=256, scale_factor=4), upsample_mode='nearest',
    align_corners=None, norm_cfg=dict(type='BN'), init_cfg=None)


def _mmseg_stdcnet(self, **arguments):
    """mmseg's ``STDCNet(stdc_type, in_channels, channels, bottleneck_type, norm_cfg, act_cfg,
    num_convs=4, with_final_conv=False, pretrained=None, init_cfg=None)``."""
    STDCNet.__init__(self, **arguments)


def _mmseg_context_path(self, **arguments):
    """mmseg's ``STDCContextPathNet(backbone_cfg, last_in_channels=(1024, 512), ...)``."""
    STDCContextPathNet.__init__(self, **arguments)


@MMSEG.register_module('STDCNet')
class MMSegSTDCNet(STDCNet):
    """mmseg's ``STDCNet``."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_STDCNET, _mmseg_stdcnet)


@MMSEG.register_module('STDCContextPathNet')
class MMSegSTDCContextPathNet(STDCContextPathNet):
    """mmseg's ``STDCContextPathNet``; its ``backbone_cfg`` type is read in the mmseg scope."""
    host = 'mmseg'
    __init__ = host_init(MMSEG_STDC_CONTEXT_PATH, _mmseg_context_path)


__all__ = ['MMSegSTDCNet', 'MMSegSTDCContextPathNet']
