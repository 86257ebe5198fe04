"""The pre-LN transformer encoder layer of ViT-style backbones (ViT, DeiT, CLIP, DINOv2 layouts).

Parameter names follow mmpretrain's ``TransformerEncoderLayer`` (``ln1``, ``attn.qkv``,
``attn.proj``, ``attn.gamma1``, ``ln2``, ``ffn.layers.0.0``, ``ffn.layers.1``, ``ffn.gamma2``;
``ffn.w12``/``ffn.w3`` for SwiGLU).
"""
from typing import List, Optional

import torch
from .mmcv_bricks import build_norm_layer
from torch import nn

from ...utils.validation import check_cfg_keys, check_choice
from .attention import MultiheadSelfAttention
from .drop import DropPath
from .ffn import FFN, LayerScale, SwiGLUFFN

FFN_TYPES = ('origin', 'swiglu_fused')
# what a ViT's ``layer_cfgs`` may override, per layer
LAYER_CFG_KEYS = ('num_heads', 'feedforward_channels', 'layer_scale_init_value', 'drop_rate',
                  'attn_drop_rate', 'drop_path_rate', 'num_fcs', 'qkv_bias', 'ffn_type',
                  'act_cfg', 'norm_cfg')


def _build_norm(norm_cfg: dict, dims: int) -> nn.Module:
    return build_norm_layer(norm_cfg, dims)[1]


class ViTAttention(MultiheadSelfAttention):
    """Self-attention whose output is scaled by an optional ``gamma1`` layer scale."""

    def __init__(self, embed_dims, num_heads, qkv_bias=True, attn_drop=0., proj_drop=0.,
                 layer_scale_init_value=0.):
        super().__init__(embed_dims, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                         proj_drop=proj_drop)
        self.gamma1 = (LayerScale(embed_dims, layer_scale_init_value)
                       if layer_scale_init_value > 0 else None)

    def forward(self, x: torch.Tensor, num_queries: Optional[int] = None) -> torch.Tensor:
        x = self.proj_drop(self.proj(self.attention(x, num_queries=num_queries)))
        return x if self.gamma1 is None else self.gamma1(x)


class TransformerEncoderLayer(nn.Module):
    """Pre-LN block: ``x + attn(ln1(x))`` then ``x + ffn(ln2(x))``; ``(B, N, C)`` in and out."""

    def __init__(self, embed_dims, num_heads, feedforward_channels, layer_scale_init_value=0.,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0., num_fcs=2, qkv_bias=True,
                 ffn_type='origin', act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='LN', eps=1e-6)):
        super().__init__()
        if num_fcs != 2:
            raise ValueError(f'layer_cfgs num_fcs must be 2 (Linear-act-Linear), got {num_fcs!r}')
        check_choice('ffn_type', ffn_type, FFN_TYPES)
        self.embed_dims = embed_dims
        self.ln1 = _build_norm(norm_cfg, embed_dims)
        self.attn = ViTAttention(embed_dims, num_heads, qkv_bias=qkv_bias,
                                 attn_drop=attn_drop_rate, proj_drop=drop_rate,
                                 layer_scale_init_value=layer_scale_init_value)
        self.ln2 = _build_norm(norm_cfg, embed_dims)
        if ffn_type == 'origin':
            self.ffn = FFN(embed_dims, feedforward_channels, act_cfg=act_cfg, drop_rate=drop_rate,
                           layer_scale_init_value=layer_scale_init_value)
        else:
            self.ffn = SwiGLUFFN(embed_dims, feedforward_channels,
                                 layer_scale_init_value=layer_scale_init_value,
                                 drop_rate=drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else None

    def _residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        if self.drop_path is not None:
            branch = self.drop_path(branch)
        # Without autograd, ``branch`` is a fresh tensor made here: add in place to save an
        # allocation. With autograd, out of place: ``branch`` is a view of a Linear's 2-D output,
        # and an in-place add on a view makes autograd rebuild the base in backward (CopySlices:
        # four extra copies of the tokens per residual). Out of place when dtypes differ, and
        # when tracing (a traced graph must not depend on the grad mode it was checked in).
        if not (branch.requires_grad or torch.jit.is_tracing()) and branch.dtype == x.dtype \
                and branch.shape == x.shape:
            return branch.add_(x)
        return x + branch

    def forward(self, x: torch.Tensor, num_queries: Optional[int] = None) -> torch.Tensor:
        """``num_queries``: compute only the first tokens' outputs, ``(B, num_queries, C)``
        (they still attend to every token)."""
        if num_queries is not None:
            x_out = x[:, :num_queries]
            x = self._residual(x_out, self.attn(self.ln1(x), num_queries=num_queries))
        else:
            x = self._residual(x, self.attn(self.ln1(x)))
        return self._residual(x, self.ffn(self.ln2(x)))


def check_layer_cfgs(layer_cfgs, num_layers: int) -> List[dict]:
    """``layer_cfgs``: ``None``, one dict for every layer or a list of ``num_layers`` dicts of
    :data:`LAYER_CFG_KEYS` -> a list of ``num_layers`` checked dicts."""
    if layer_cfgs is None:
        layer_cfgs = {}
    if isinstance(layer_cfgs, dict):
        layer_cfgs = [layer_cfgs] * num_layers
    if not isinstance(layer_cfgs, (list, tuple)) or len(layer_cfgs) != num_layers:
        raise ValueError(f'layer_cfgs must be a dict or a list of {num_layers} dicts '
                         f'(one per layer), got {layer_cfgs!r}')
    checked = []
    for i, cfg in enumerate(layer_cfgs):
        cfg = check_cfg_keys(f'layer_cfgs[{i}]', cfg, LAYER_CFG_KEYS)
        if 'ffn_type' in cfg:
            check_choice(f'layer_cfgs[{i}] ffn_type', cfg['ffn_type'], FFN_TYPES)
        checked.append(cfg)
    return checked
