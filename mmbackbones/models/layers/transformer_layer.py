"""The pre-LN transformer encoder layer of ViT-style backbones (ViT, DeiT, CLIP, DINOv2, EVA-02
and ViTDet layouts), one class switched by arguments.

Parameter names follow mmpretrain's ``TransformerEncoderLayer`` (``ln1``, ``attn.qkv``,
``attn.proj``, ``attn.gamma1``, ``ln2``, ``ffn.layers.0.0``, ``ffn.layers.1``, ``ffn.gamma2``;
``ffn.w12``/``ffn.w3`` (and ``ffn.norm``, EVA-02's sub-LN) for SwiGLU; ``attn.rel_pos_h``/
``attn.rel_pos_w`` for ViTDet's decomposed relative positions; ``attn.q_bias``/``attn.v_bias``
for BEiT/EVA's query and value biases, ``qkv_bias='qv'``; ``residual.*`` for ViTDet's residual
conv block after the MLP).

Options: rotary position embedding of the patch tokens (EVA-02: the tables come from the
backbone at forward, ``rope=(cos, sin)``), window attention over the token map padded to the
window (ViTDet, ``window_size > 0``; with rope the backbone passes the window's tables),
decomposed relative position bias (``use_rel_pos``), ViTDet's residual conv block
(``residual_block``).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .mmcv_bricks import build_norm_layer

from ...utils.validation import check_cfg_keys, check_choice
from .attention import MultiheadSelfAttention, biased_attention, split_heads
from .drop import DropPath
from .ffn import FFN, LayerScale, SwiGLUFFN
from .rel_pos import (RESIZE_MODES, decomposed_rel_pos_bias, window_partition,
                      window_unpartition)
from .rope import apply_rope
from .vitdet_residual import ResBottleneckBlock

# 'swiglu': EVA-02's SwiGLU (hidden width = feedforward_channels, optional sub-LN)
FFN_TYPES = ('origin', 'swiglu_fused', 'swiglu')
# what a ViT's ``layer_cfgs`` may override, per layer
LAYER_CFG_KEYS = ('num_heads', 'feedforward_channels', 'layer_scale_init_value', 'drop_rate',
                  'attn_drop_rate', 'drop_path_rate', 'num_fcs', 'qkv_bias', 'ffn_type',
                  'act_cfg', 'norm_cfg', 'sub_ln', 'window_size', 'use_rel_pos',
                  'residual_block')


def _build_norm(norm_cfg: dict, dims: int) -> nn.Module:
    return build_norm_layer(norm_cfg, dims)[1]


class ViTAttention(MultiheadSelfAttention):
    """Self-attention whose output is scaled by an optional ``gamma1`` layer scale; with
    ``rel_pos_size=(h, w)`` it adds ViTDet's decomposed relative position bias (tables
    ``rel_pos_h`` ``(2h - 1, head_dims)``, ``rel_pos_w``; zeros unless
    ``rel_pos_zero_init=False``), and it rotates queries/keys when given rope tables.
    ``qkv_bias='qv'``: ``q_bias`` and ``v_bias`` parameters and no key bias (BEiT, EVA)."""

    def __init__(self, embed_dims, num_heads, qkv_bias=True, attn_drop=0., proj_drop=0.,
                 layer_scale_init_value=0., rel_pos_size: Optional[Sequence[int]] = None,
                 rel_pos_zero_init: bool = True, rel_pos_resize: str = 'linear'):
        if not (isinstance(qkv_bias, bool) or qkv_bias == 'qv'):
            raise ValueError(f"qkv_bias must be True, False or 'qv' (query and value biases "
                             f"only), got {qkv_bias!r}")
        super().__init__(embed_dims, num_heads, qkv_bias=qkv_bias is True, attn_drop=attn_drop,
                         proj_drop=proj_drop)
        if qkv_bias == 'qv':
            self.q_bias = nn.Parameter(torch.zeros(embed_dims))
            self.v_bias = nn.Parameter(torch.zeros(embed_dims))
        else:
            self.q_bias = self.v_bias = None
        self.gamma1 = (LayerScale(embed_dims, layer_scale_init_value)
                       if layer_scale_init_value > 0 else None)
        self.use_rel_pos = rel_pos_size is not None
        self.rel_pos_resize = check_choice('rel_pos_resize', rel_pos_resize, RESIZE_MODES)
        if self.use_rel_pos:
            h, w = rel_pos_size
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * h - 1, self.head_dims))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * w - 1, self.head_dims))
            self.rel_pos_zero_init = rel_pos_zero_init
            if not rel_pos_zero_init:
                nn.init.trunc_normal_(self.rel_pos_h, std=.02)
                nn.init.trunc_normal_(self.rel_pos_w, std=.02)

    def _qkv(self, x: torch.Tensor) -> torch.Tensor:
        if self.q_bias is None:
            return self.qkv(x)
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        return F.linear(x, self.qkv.weight, bias)

    def _positional(self, x, num_queries, rope, num_prefix, hw):
        """Attention with rope, the relative position bias and/or query/value biases (no
        output projection)."""
        b, n, _ = x.shape
        q, k, v = split_heads(self._qkv(x), self.num_heads)
        if rope is not None:
            q = apply_rope(q, rope[0], rope[1], num_prefix).type_as(v)
            k = apply_rope(k, rope[0], rope[1], num_prefix).type_as(v)
        bias = None
        if self.use_rel_pos:
            if hw is None or num_prefix or hw[0] * hw[1] != n:
                raise ValueError('relative position attention needs the (H, W) grid of the '
                                 'tokens and no class/register tokens')
            bias = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, hw,
                                           self.rel_pos_resize).to(q.dtype)
        if num_queries is not None and num_queries < n:
            q = q[:, :, :num_queries]
            bias = None if bias is None else bias[:, :, :num_queries]
        else:
            num_queries = n
        dropout_p = self.attn_drop if self.training else 0.
        if bias is None:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=self.scale)
        else:
            x = biased_attention(q, k, v, bias, self.scale, dropout_p)
        return x.transpose(1, 2).reshape(b, num_queries, self.embed_dims)

    def forward(self, x: torch.Tensor, num_queries: Optional[int] = None, rope=None,
                num_prefix: int = 0, hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        if rope is None and not self.use_rel_pos and self.q_bias is None:
            x = self.attention(x, num_queries=num_queries)
        else:
            x = self._positional(x, num_queries, rope, num_prefix, hw)
        x = self.proj_drop(self.proj(x))
        return x if self.gamma1 is None else self.gamma1(x)


class TransformerEncoderLayer(nn.Module):
    """Pre-LN block: ``x + attn(ln1(x))`` then ``x + ffn(ln2(x))``; ``(B, N, C)`` in and out.

    ``window_size > 0``: attention within non-overlapping windows of the ``(H, W)`` token map
    (padded with zeros after ``ln1`` to a multiple of the window, as ViTDet); the tokens must
    then be the map only. ``use_rel_pos``: relative position tables for ``rel_pos_size`` (the
    window, or the token grid of a global block). ``sub_ln``: a norm inside the SwiGLU MLP.
    ``residual_block``: ViTDet's residual conv block on the token map after the MLP (tokens must
    be the map only)."""

    def __init__(self, embed_dims, num_heads, feedforward_channels, layer_scale_init_value=0.,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0., num_fcs=2, qkv_bias=True,
                 ffn_type='origin', act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='LN', eps=1e-6), sub_ln=False, window_size=0,
                 use_rel_pos=False, rel_pos_size=None, rel_pos_zero_init=True,
                 residual_block=False, rel_pos_resize='linear'):
        super().__init__()
        if num_fcs != 2:
            raise ValueError(f'layer_cfgs num_fcs must be 2 (Linear-act-Linear), got {num_fcs!r}')
        check_choice('ffn_type', ffn_type, FFN_TYPES)
        if sub_ln and ffn_type != 'swiglu':
            raise ValueError(f"layer_cfgs sub_ln=True needs ffn_type='swiglu' (EVA-02's sub-LN "
                             f"is inside its SwiGLU MLP), got ffn_type={ffn_type!r}")
        self.embed_dims = embed_dims
        self.window_size = int(window_size)
        if use_rel_pos:
            rel_pos_size = (window_size, window_size) if window_size else rel_pos_size
            if rel_pos_size is None:
                raise ValueError('use_rel_pos=True in a global block needs rel_pos_size (the '
                                 'token grid (H, W) the tables are made for)')
        else:
            rel_pos_size = None
        self.ln1 = _build_norm(norm_cfg, embed_dims)
        self.attn = ViTAttention(embed_dims, num_heads, qkv_bias=qkv_bias,
                                 attn_drop=attn_drop_rate, proj_drop=drop_rate,
                                 layer_scale_init_value=layer_scale_init_value,
                                 rel_pos_size=rel_pos_size, rel_pos_zero_init=rel_pos_zero_init,
                                 rel_pos_resize=rel_pos_resize)
        self.ln2 = _build_norm(norm_cfg, embed_dims)
        if ffn_type == 'origin':
            self.ffn = FFN(embed_dims, feedforward_channels, act_cfg=act_cfg, drop_rate=drop_rate,
                           layer_scale_init_value=layer_scale_init_value)
        else:
            self.ffn = SwiGLUFFN(embed_dims, feedforward_channels,
                                 layer_scale_init_value=layer_scale_init_value,
                                 drop_rate=drop_rate, fused=ffn_type == 'swiglu_fused',
                                 norm_cfg=norm_cfg if sub_ln else None)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else None
        self.residual = ResBottleneckBlock(embed_dims, embed_dims // 2, act_cfg) \
            if residual_block else None

    def _residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        if self.drop_path is not None:
            branch = self.drop_path(branch)
        # Without autograd, ``branch`` is a fresh tensor made here: add in place to save an
        # allocation. With autograd, out of place: ``branch`` is a view of a Linear's 2-D output,
        # and an in-place add on a view makes autograd rebuild the base in backward (CopySlices:
        # four extra copies of the tokens per residual). Out of place when dtypes differ, and
        # when tracing (a traced graph must not depend on the grad mode it was checked in).
        if not (branch.requires_grad or torch.jit.is_tracing()) and branch.dtype == x.dtype \
                and branch.shape == x.shape and branch.is_contiguous():
            return branch.add_(x)
        return x + branch

    def _window_attention(self, x: torch.Tensor, hw: Tuple[int, int], rope=None) -> torch.Tensor:
        b, n, c = x.shape
        if hw is None or hw[0] * hw[1] != n:
            raise ValueError('window attention needs the (H, W) grid of the tokens and no '
                             'class/register tokens')
        ws = self.window_size
        windows, padded = window_partition(self.ln1(x).view(b, hw[0], hw[1], c), ws)
        out = self.attn(windows, None, rope, 0, (ws, ws))
        return window_unpartition(out, ws, padded, hw).reshape(b, n, c)

    def forward(self, x: torch.Tensor, num_queries: Optional[int] = None, rope=None,
                num_prefix: int = 0, hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """``num_queries``: compute only the first tokens' outputs, ``(B, num_queries, C)``
        (they still attend to every token). ``rope``: ``(cos, sin)`` tables of the patch tokens,
        which follow ``num_prefix`` class/register tokens (a windowed block: the tables of one
        window); ``hw``: the token grid."""
        if self.window_size:
            x = self._residual(x, self._window_attention(x, hw, rope))
        elif num_queries is not None:
            x_out = x[:, :num_queries]
            x = self._residual(x_out, self.attn(self.ln1(x), num_queries, rope, num_prefix, hw))
        else:
            x = self._residual(x, self.attn(self.ln1(x), None, rope, num_prefix, hw))
        x = self._residual(x, self.ffn(self.ln2(x)))
        if self.residual is not None:
            if hw is None or num_prefix or hw[0] * hw[1] != x.shape[1]:
                raise ValueError('the residual conv block needs the (H, W) grid of the tokens '
                                 'and no class/register tokens')
            b, n, c = x.shape
            x = self.residual(x.reshape(b, hw[0], hw[1], c).permute(0, 3, 1, 2))
            x = x.permute(0, 2, 3, 1).reshape(b, n, c)
        return x


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
