"""Backbones and necks. Importing this package registers every family into
``mmbackbones.MODELS`` (their ``@MODELS.register_module()`` decorators) and nothing else:
``mmbackbones.registry.register_all_modules()`` does the rest (root norm layers, safe loading).
"""
from . import backbones  # noqa: F401
from . import necks  # noqa: F401
from .base import BaseBackbone, ShapeSpec

__all__ = ['BaseBackbone', 'ShapeSpec']
