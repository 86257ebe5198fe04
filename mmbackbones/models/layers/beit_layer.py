"""BEiT's encoder layer: a pre-LN transformer block whose attention adds a relative position
bias (:mod:`.rel_pos_bias`) and whose two residual branches are scaled by learned per-channel
``gamma_1``/``gamma_2`` (layer scale).

Parameter names are mmpretrain's ``BEiTTransformerEncoderLayer`` = mmseg's (``ln1``,
``attn.q_bias``, ``attn.v_bias``, ``attn.qkv.weight``, ``attn.relative_position_bias_table``,
buffer ``attn.relative_position_index``, ``attn.proj``, ``ln2``, ``ffn.layers.0.0``,
``ffn.layers.1``, ``gamma_1``, ``gamma_2``).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .attention import head_dims
from .drop import DropPath
from .ffn import FFN
from .mmcv_bricks import build_norm_layer
from .rel_pos_bias import num_relative_distance, relative_position_bias, relative_position_index

QKV_BIAS_CHOICES = ('qv_bias', True, False)


class BEiTAttention(nn.Module):
    """Self-attention with an optional per-layer relative position bias.

    Args:
        embed_dims, num_heads: channels and heads.
        window_size: the patch grid the bias table is made for.
        use_rel_pos_bias: give this layer its own table.
        bias: ``'qv_bias'`` (learned q and v biases, none for k: BEiT), ``True`` (a bias for
            each of q, k, v in ``qkv.bias``: MAE) or ``False``.
        attn_drop_rate, proj_drop_rate: dropouts.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: Sequence[int],
                 use_rel_pos_bias: bool, bias: Union[str, bool] = 'qv_bias',
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.):
        super().__init__()
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.head_dims = head_dims(embed_dims, num_heads)
        self.bias = bias
        if bias == 'qv_bias':
            self.q_bias = nn.Parameter(torch.zeros(embed_dims))
            self.v_bias = nn.Parameter(torch.zeros(embed_dims))
        self.window_size = (int(window_size[0]), int(window_size[1]))
        self.use_rel_pos_bias = use_rel_pos_bias
        if use_rel_pos_bias:
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros(num_relative_distance(self.window_size), num_heads))
            self.register_buffer('relative_position_index',
                                 relative_position_index(self.window_size))
        else:
            self.relative_position_bias_table = None
            self.relative_position_index = None
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=bias is True)
        self.attn_drop = float(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate) if proj_drop_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid: Tuple[int, int],
                shared_bias: Optional[torch.Tensor] = None,
                with_cls_token: bool = True) -> torch.Tensor:
        b, n, c = x.shape
        if self.bias == 'qv_bias':
            qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
            qkv = F.linear(x, self.qkv.weight, qkv_bias)
        else:
            qkv = self.qkv(x)
        q, k, v = qkv.reshape(b, n, 3, self.num_heads, self.head_dims).permute(
            2, 0, 3, 1, 4).unbind(0)
        attn_bias = shared_bias
        if self.relative_position_bias_table is not None:
            own = relative_position_bias(self.relative_position_bias_table, self.window_size,
                                         grid, self.relative_position_index, with_cls_token)
            attn_bias = own if attn_bias is None else attn_bias + own
        if attn_bias is not None:
            attn_bias = attn_bias.unsqueeze(0).to(q.dtype)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias,
                                           dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, bias={self.bias!r}, '
                f'window_size={self.window_size}')


class BEiTTransformerEncoderLayer(nn.Module):
    """``x + drop_path(gamma_1 * attn(ln1(x)))``, then ``x + drop_path(gamma_2 * ffn(ln2(x)))``
    (no ``gamma`` when ``layer_scale_init_value`` is 0); ``(B, N, C)`` in and out."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 layer_scale_init_value: float, window_size: Sequence[int],
                 use_rel_pos_bias: bool, drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0., num_fcs: int = 2,
                 bias: Union[str, bool] = 'qv_bias', act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN', eps=1e-6)):
        super().__init__()
        if num_fcs != 2:
            raise ValueError(f'layer_cfgs num_fcs must be 2 (Linear-act-Linear), got {num_fcs!r}')
        self.ln1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = BEiTAttention(embed_dims, num_heads, window_size, use_rel_pos_bias, bias,
                                  attn_drop_rate=attn_drop_rate, proj_drop_rate=drop_rate)
        self.ln2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, feedforward_channels, act_cfg=act_cfg, drop_rate=drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.layer_scale_init_value = float(layer_scale_init_value)
        if layer_scale_init_value > 0:
            self.gamma_1 = nn.Parameter(torch.full((embed_dims,), float(layer_scale_init_value)))
            self.gamma_2 = nn.Parameter(torch.full((embed_dims,), float(layer_scale_init_value)))
        else:
            self.gamma_1, self.gamma_2 = None, None

    def forward(self, x: torch.Tensor, grid: Tuple[int, int],
                shared_bias: Optional[torch.Tensor] = None,
                with_cls_token: bool = True) -> torch.Tensor:
        branch = self.attn(self.ln1(x), grid, shared_bias, with_cls_token)
        x = x + self.drop_path(branch if self.gamma_1 is None else self.gamma_1 * branch)
        branch = self.ffn(self.ln2(x))
        return x + self.drop_path(branch if self.gamma_2 is None else self.gamma_2 * branch)
