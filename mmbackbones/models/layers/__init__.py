"""Small building blocks shared by several backbone families."""
from .drop import DropPath, drop_path
from .norm import FrozenBatchNorm2d, build_norm, check_norm_cfg
from .layer_norm2d import LayerNorm2d
from .window_attention import ShiftWindowMSA, WindowMSA
from .attention import MultiheadSelfAttention
from .ffn import FFN, LayerScale, SwiGLUFFN
from .patch_embed import PatchEmbed
from .pos_embed import INTERPOLATE_MODES, check_pair, resize_pos_embed
from .transformer_layer import TransformerEncoderLayer
from .resnet_blocks import BasicBlock, Bottleneck, ResLayer

__all__ = ['DropPath', 'drop_path', 'FrozenBatchNorm2d', 'build_norm', 'check_norm_cfg',
           'LayerNorm2d', 'WindowMSA', 'ShiftWindowMSA', 'MultiheadSelfAttention', 'FFN', 'LayerScale',
           'SwiGLUFFN', 'PatchEmbed', 'INTERPOLATE_MODES', 'check_pair', 'resize_pos_embed',
           'TransformerEncoderLayer', 'BasicBlock', 'Bottleneck', 'ResLayer']
