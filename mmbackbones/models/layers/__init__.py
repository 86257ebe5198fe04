"""Small building blocks shared by several backbone families."""
from .drop import DropPath, drop_path
from .norm import FrozenBatchNorm2d
from .resnet_blocks import BasicBlock, Bottleneck, ResLayer, make_res_layer  # noqa: F401

__all__ = ['FrozenBatchNorm2d', 'DropPath', 'drop_path']
