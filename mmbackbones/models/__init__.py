"""Backbones and necks. Importing this registers every family into ``mmbackbones.MODELS``."""
from .. import checkpoint  # noqa: F401  (registers safe Pretrained loading with mmengine)
from . import backbones  # noqa: F401
from . import necks  # noqa: F401
from .base import BaseBackbone, ShapeSpec

__all__ = ['BaseBackbone', 'ShapeSpec']
