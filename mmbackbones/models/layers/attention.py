"""Multi-head self-attention over token sequences through
``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on CPU and GPU).

Parameter names (``qkv``, ``proj``) follow mmpretrain's ``MultiheadAttention`` and timm's
``Attention``; the fused ``qkv`` weight is laid out ``[q; k; v]``, each head-major, in both.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .pos_embed import is_exporting


class _SplitHeads(torch.autograd.Function):
    """``(B, N, 3 * heads * D)`` -> ``q, k, v`` views of shape ``(B, heads, N, D)``.

    Autograd's own backward of ``reshape -> permute -> unbind`` stacks the three gradients and
    then copies the permuted stack once more into the ``(B, N, 3C)`` layout the Linear's backward
    needs; this one writes each gradient straight into that layout (one copy, not two)."""

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, heads: int):
        b, n, c3 = qkv.shape
        ctx.split_shape = (b, n, 3, heads, c3 // (3 * heads))
        return qkv.view(ctx.split_shape).permute(2, 0, 3, 1, 4).unbind(0)

    @staticmethod
    def backward(ctx, grad_q, grad_k, grad_v):
        grad = grad_q.new_empty(ctx.split_shape)
        for i, g in enumerate((grad_q, grad_k, grad_v)):
            grad[:, :, i].copy_(g.transpose(1, 2))
        return grad.flatten(2), None


def split_heads(qkv: torch.Tensor, heads: int):
    """``(B, N, 3C)`` fused projection -> ``q, k, v``, each ``(B, heads, N, C // heads)`` (views)."""
    if qkv.requires_grad and qkv.is_contiguous() and not is_exporting():
        return _SplitHeads.apply(qkv, heads)
    b, n, c3 = qkv.shape
    return qkv.reshape(b, n, 3, heads, c3 // (3 * heads)).permute(2, 0, 3, 1, 4).unbind(0)


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                     scale: Optional[float] = None, dropout_p: float = 0.) -> torch.Tensor:
    """``softmax(q @ k^T * scale + bias) @ v``, ``scale`` defaulting to ``D ** -0.5``.

    On the CPU, when autograd records a gradient of the additive ``bias`` (a learned relative
    position bias), ``F.scaled_dot_product_attention`` leaves its fused kernel for its generic
    path, which scales ``q`` and ``k`` each and runs a "safe" softmax (``isneginf``, ``all`` and
    ``where`` over the whole ``(B, heads, N, N)`` map on top of the softmax). There this function
    computes the plain product instead (ViTDet's own order: ``(q * scale) @ k^T``, the bias
    added in place, softmax, ``@ v``); elsewhere it is SDPA."""
    if q.device.type != 'cpu' or not (torch.is_grad_enabled() and bias.requires_grad) or \
            is_exporting():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p,
                                              scale=scale)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    attn = torch.matmul(q * scale, k.transpose(-2, -1)).add_(bias).softmax(-1)
    if dropout_p > 0:
        attn = F.dropout(attn, dropout_p)
    return torch.matmul(attn, v)


def head_dims(embed_dims: int, num_heads: int) -> int:
    """The channels of one head; ``embed_dims`` must be divisible by ``num_heads``."""
    if embed_dims % num_heads:
        raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                         f'({num_heads})')
    return embed_dims // num_heads


class MultiheadSelfAttention(nn.Module):
    """``(B, N, C)`` tokens -> ``(B, N, embed_dims)``.

    Args:
        embed_dims: channels of queries/keys/values (and of the output).
        num_heads: heads; ``embed_dims`` must be divisible by it.
        input_dims: channels of the input (defaults to ``embed_dims``).
        qkv_bias: bias of the fused qkv projection.
        proj_bias: bias of the output projection.
        attn_drop: dropout on attention weights (training only).
        proj_drop: dropout after the output projection.
        qk_scale: scale of ``q @ k^T`` (default ``head_dims ** -0.5``).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 input_dims: Optional[int] = None,
                 qkv_bias: bool = True,
                 proj_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 qk_scale: Optional[float] = None):
        super().__init__()
        self.head_dims = head_dims(embed_dims, num_heads)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.input_dims = input_dims or embed_dims
        self.scale = qk_scale
        self.attn_drop = float(attn_drop)
        self.qkv = nn.Linear(self.input_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()

    def attention(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None,
                  num_queries: Optional[int] = None) -> torch.Tensor:
        """Attention without the output projection: ``(B, N, C_in)`` -> ``(B, Q, embed_dims)``.

        ``num_queries``: only the first ``Q`` tokens attend (to all ``N``); ``None``: all
        (``Q = N``). Used when only leading tokens are needed (the class token of a last layer).
        ``attn_mask`` is broadcast to ``(B, num_heads, Q, N)``: bool (True = attend) or an
        additive float bias (e.g. a relative position bias).
        """
        b, n, _ = x.shape
        heads, dims = self.num_heads, self.head_dims
        if num_queries is None or num_queries >= n:
            # (B, N, 3C) -> (3, B, heads, N, head_dims); SDPA takes the strided views as they are
            q, k, v = split_heads(self.qkv(x), heads)
            num_queries = n
        else:
            weight, bias = self.qkv.weight, self.qkv.bias
            c = self.embed_dims
            q = F.linear(x[:, :num_queries], weight[:c], None if bias is None else bias[:c])
            q = q.reshape(b, num_queries, heads, dims).transpose(1, 2)
            kv = F.linear(x, weight[c:], None if bias is None else bias[c:])
            k, v = kv.reshape(b, n, 2, heads, dims).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask,
            dropout_p=self.attn_drop if self.training else 0., scale=self.scale)
        return x.transpose(1, 2).reshape(b, num_queries, self.embed_dims)

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None,
                num_queries: Optional[int] = None) -> torch.Tensor:
        return self.proj_drop(self.proj(self.attention(x, attn_mask, num_queries)))

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}'
