"""Necks; importing this registers them into ``mmbackbones.MODELS``."""
from .backbone_with_neck import BackboneWithNeck
from .fpn import FPN, resolve_auto_in_channels
from .spatial import check_spatial_outputs, spatial_fix
from .simple_fpn import SimpleFeaturePyramid

__all__ = ['FPN', 'BackboneWithNeck', 'resolve_auto_in_channels', 'check_spatial_outputs',
           'spatial_fix', 'SimpleFeaturePyramid']
