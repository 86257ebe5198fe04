"""Necks; importing this registers them into ``mmbackbones.MODELS``."""
from .backbone_with_neck import BackboneWithNeck
from .fpn import FPN, resolve_auto_in_channels

__all__ = ['FPN', 'BackboneWithNeck', 'resolve_auto_in_channels']
