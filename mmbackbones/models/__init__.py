"""Backbones and necks. Importing this package registers every family into
``mmbackbones.MODELS`` (their ``@MODELS.register_module()`` decorators; mmengine imports it on
the first lookup, the registry's ``locations``) and the norm layers into mmengine's root registry
(``layers/norm.py``, ``layers/layer_norm2d.py``). Safe checkpoint loading is installed by
``mmbackbones.checkpoint``'s import, which the first backbone constructed triggers.
"""
from . import backbones  # noqa: F401
from . import necks  # noqa: F401
from .base import BaseBackbone, ShapeSpec

__all__ = ['BaseBackbone', 'ShapeSpec']
