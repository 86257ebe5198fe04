"""Small building blocks shared by several backbone families."""
from .drop import DropPath, drop_path
from .norm import FrozenBatchNorm2d, build_norm, check_norm_cfg
from .layer_norm2d import LayerNorm2d  # noqa: F401
from .window_attention import ShiftWindowMSA, WindowMSA  # noqa: F401
from .attention import MultiheadSelfAttention  # noqa: F401
from .ffn import FFN, LayerScale, SwiGLUFFN  # noqa: F401
from .patch_embed import PatchEmbed  # noqa: F401
from .pos_embed import INTERPOLATE_MODES, check_pair, resize_pos_embed  # noqa: F401
from .transformer_layer import TransformerEncoderLayer  # noqa: F401
from .resnet_blocks import BasicBlock, Bottleneck, ResLayer, make_res_layer  # noqa: F401

__all__ = ['FrozenBatchNorm2d', 'build_norm', 'check_norm_cfg', 'DropPath', 'drop_path']
