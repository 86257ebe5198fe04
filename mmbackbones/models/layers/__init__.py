"""Small building blocks shared by several backbone families."""
from .drop import DropPath, drop_path
from .norm import FrozenBatchNorm2d

__all__ = ['FrozenBatchNorm2d', 'DropPath', 'drop_path']
