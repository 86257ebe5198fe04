"""mmdet 3.3's ``HourglassNet`` twin (``mmbackbones.mmdet.HourglassNet``): exactly mmdet's
arguments, building the core :class:`~mmbackbones.models.backbones.hourglass.HourglassNet`."""
from ..models.backbones.hourglass import MMDetHourglassNet
from ..registry import HOST_TWINS

MMDetHourglassNet.host = 'mmdet'
HOST_TWINS['mmdet'].register_module('HourglassNet', module=MMDetHourglassNet)
