"""mmdet 3.3's ``SSDVGG`` twin (``mmbackbones.mmdet.SSDVGG``): the core
:class:`~mmbackbones.models.backbones.vgg.SSDVGG` already has mmdet's signature, defaults and
parameter names (mmdet is its only host), registered in the mmdet scope."""
from ..models.backbones.vgg import SSDVGG
from ..registry import HOST_TWINS


@HOST_TWINS['mmdet'].register_module('SSDVGG')
class MMDetSSDVGG(SSDVGG):
    """mmdet's ``SSDVGG(depth, with_last_pool=False, ceil_mode=True, ...)``."""
    host = 'mmdet'
