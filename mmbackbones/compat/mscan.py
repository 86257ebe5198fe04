"""mmseg 1.2's ``MSCAN`` (``mmbackbones.mmseg.MSCAN``): the core class itself, whose signature is
mmseg's (mmseg is the only OpenMMLab host of SegNeXt's encoder), registered in the host scope."""
from ..models.backbones.mscan import MSCAN
from ..registry import HOST_TWINS

HOST_TWINS['mmseg'].register_module('MSCAN', module=MSCAN)
