"""mmdet 3.3's and mmseg 1.2's ``HRNet`` twins (``mmbackbones.mmdet.HRNet``,
``mmbackbones.mmseg.HRNet``): the adapters of ``models/backbones/hrnet_twins.py``, registered in
the host scopes."""
from ..models.backbones.hrnet_twins import MMDetHRNet, MMSegHRNet
from ..registry import HOST_TWINS

MMDetHRNet.host, MMSegHRNet.host = 'mmdet', 'mmseg'
HOST_TWINS['mmdet'].register_module('HRNet', module=MMDetHRNet)
HOST_TWINS['mmseg'].register_module('HRNet', module=MMSegHRNet)
