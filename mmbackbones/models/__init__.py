"""Backbones and necks. Importing this registers every family into ``mmbackbones.MODELS``."""
from . import backbones  # noqa: F401
from . import necks  # noqa: F401
from .base import BaseBackbone, ShapeSpec

__all__ = ['BaseBackbone', 'ShapeSpec']
