"""Shifted-window self-attention (Swin) with a relative position bias.

Parameter and buffer names follow mmpretrain's ``ShiftWindowMSA``/``WindowMSA``
(``w_msa.qkv``, ``w_msa.proj``, ``w_msa.relative_position_bias_table``,
``w_msa.relative_position_index``) so Swin checkpoints load unchanged.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import head_dims, split_heads
from .pos_embed import is_exporting, is_tracing

# Masked pairs get this additive bias, as in the original Swin (not -inf, which would make a
# row of padded tokens NaN); kept so outputs match mmpretrain/timm bit for bit.
MASK_VALUE = -100.0


def relative_position_index(window_size: Tuple[int, int]) -> torch.Tensor:
    """``(Wh*Ww, Wh*Ww)`` long tensor: row of the bias table for each (query, key) pair."""
    wh, ww = window_size
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing='ij'))
    coords = coords.flatten(1)  # 2, Wh*Ww
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # Wh*Ww, Wh*Ww, 2
    return (rel[..., 0] + wh - 1) * (2 * ww - 1) + (rel[..., 1] + ww - 1)


def resize_relative_position_bias_table(table: torch.Tensor,
                                        dst_window_size: Tuple[int, int]) -> torch.Tensor:
    """Resize a ``((2*Wh-1)*(2*Ww-1), num_heads)`` table of a square window to another window
    size by bicubic interpolation of its ``(2*W-1)`` x ``(2*W-1)`` grid (timm's "simple"
    resize). Returns a table of shape ``((2*dh-1)*(2*dw-1), num_heads)``."""
    num_pos, num_heads = table.shape
    src = int(round(num_pos ** 0.5))
    if src * src != num_pos:
        raise ValueError(f'cannot resize a relative position bias table of {num_pos} rows: '
                         f'expected a square (2*W-1)**2 table of a square window')
    dst = (2 * dst_window_size[0] - 1, 2 * dst_window_size[1] - 1)
    if (src, src) == dst:
        return table
    grid = table.t().reshape(1, num_heads, src, src).float()
    grid = F.interpolate(grid, size=dst, mode='bicubic', align_corners=False)
    return grid.reshape(num_heads, -1).t().contiguous().to(table.dtype)


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """``(B, H, W, C)`` with sides multiple of ``window_size`` -> ``(B*nW, ws*ws, C)``."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B*nW, ws*ws, C)`` -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window_size) * (w // window_size))  # explicit: B may be 0
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


class _ReorderTokens(torch.autograd.Function):
    """``x[:, order]`` on ``(B, L, C)`` whose backward is the inverse gather, ``grad[:, inverse]``
    (``index_select``'s own backward is a scatter-add into zeros, slower for a permutation)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor):
        ctx.save_for_backward(inverse)
        return x.index_select(1, order)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        inverse, = ctx.saved_tensors
        return grad.index_select(1, inverse), None, None


def reorder_tokens(x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """``(B, L, C)`` -> ``x[:, order]``; ``inverse`` is the inverse permutation of ``order``."""
    if x.requires_grad:
        return _ReorderTokens.apply(x, order, inverse)
    return x.index_select(1, order)


def shifted_window_order(h: int, w: int, window_size: int, shift_size: int,
                         device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(order, inverse)``: the flat token indices of an ``h x w`` map (multiples of the
    window) that roll it by ``-shift_size`` and partition it into windows in one gather
    (``x.flatten(1, 2)[:, order]`` equals ``window_partition(torch.roll(x, -shift), ws)``
    flattened), and the permutation that undoes it. ``torch.roll`` of two dims on the CPU is two
    concatenations; one gather is ~5x cheaper than roll + partition."""
    idx = torch.arange(h * w, device=device).view(1, h, w, 1)
    idx = torch.roll(idx, shifts=(-shift_size, -shift_size), dims=(1, 2))
    order = window_partition(idx, window_size).reshape(-1)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel(), device=device)
    return order, inverse


def _region_ids(size, window_size: int, shift_size: int, device=None) -> torch.Tensor:
    """Region (0, 1, 2) of each index along one side of a rolled map: ``[0, size - window)``,
    ``[size - window, size - shift)``, ``[size - shift, size)``. Built from comparisons, so a
    traced ``size`` stays symbolic."""
    idx = torch.arange(size, device=device)
    return (idx >= size - window_size).long() + (idx >= size - shift_size).long()


def shifted_window_mask(h: int, w: int, window_size: int, shift_size: int,
                        device=None) -> torch.Tensor:
    """``(nW, ws*ws, ws*ws)`` additive mask for a map of ``h x w`` (multiples of the window)
    rolled by ``-shift_size``: pairs of tokens from different regions of the unrolled map get
    :data:`MASK_VALUE`, others 0."""
    rows = _region_ids(h, window_size, shift_size, device)
    cols = _region_ids(w, window_size, shift_size, device)
    img = (rows[:, None] * 3 + cols[None, :]).to(torch.float32)[None, :, :, None]
    ids = window_partition(img, window_size).squeeze(-1)  # nW, ws*ws
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill_(diff != 0, MASK_VALUE)


class WindowMSA(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias.

    ``forward(x, mask)``: ``x`` is ``(B*nW, N, C)`` with ``N = Wh*Ww``; ``mask`` (optional) is
    ``(nW, N, N)`` added to the logits of the windows of each image. Output ``(B*nW, N, C)``.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: Tuple[int, int],
                 qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        self.head_dims = head_dims(embed_dims, num_heads)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = tuple(window_size)
        self.scale = qk_scale or self.head_dims ** -0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        # Persistent, as in mmpretrain's checkpoints (so they load strictly both ways).
        self.register_buffer('relative_position_index', relative_position_index(self.window_size))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()

    def relative_position_bias(self) -> torch.Tensor:
        """``(num_heads, N, N)`` bias gathered from the table."""
        n = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        # contiguous: broadcasting a permuted bias over every window is a strided, slow add
        return bias.view(n, n, -1).permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        bw, n, c = x.shape
        q, k, v = split_heads(self.qkv(x), self.num_heads)  # each (B*nW, heads, N, hd)
        bias = self.relative_position_bias().unsqueeze(0)  # 1, heads, N, N
        nw = 1
        if mask is not None:
            nw = mask.shape[0]
            bias = bias + mask.unsqueeze(1).to(bias.dtype)  # nW, heads, N, N: one per window
        if q.is_cuda and mask is None:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias.to(q.dtype),
                dropout_p=self.attn_drop if self.training else 0., scale=self.scale)
        else:
            # Explicit attention: for 7x7 windows on CPU it beats SDPA's kernels (the fused one
            # is slower at N=49, and a per-window mask sends SDPA to its checked math path).
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn.view(bw // nw, nw, self.num_heads, n, n)
            # in place only without autograd (and not traced): an in-place add on a view costs
            # a CopySlices (clone + copy of the whole attention matrix) in backward
            in_place = not (attn.requires_grad or bias.requires_grad or torch.jit.is_tracing())
            attn = attn.add_(bias) if in_place else attn + bias
            attn = attn.view(bw, self.num_heads, n, n)  # explicit sizes: bw may be 0
            attn = attn.softmax(dim=-1)
            if self.training and self.attn_drop > 0:
                attn = F.dropout(attn, self.attn_drop)
            out = attn @ v
        out = out.transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(out))


class ShiftWindowMSA(nn.Module):
    """(Shifted-)window attention over a ``(B, H, W, C)`` map of any size.

    The map is zero-padded at the bottom/right to a multiple of the window, rolled by
    ``-shift_size`` (with a mask so that windows do not mix the wrapped-around regions),
    attended window by window, rolled back and cropped. Output ``(B, H, W, C)``.

    ``pad_small_map`` (mmpretrain's flag): when a side of the map equals the window, the shift
    is dropped unless ``pad_small_map=True``, as the original classification models do. A map
    smaller than the window is always padded (mmpretrain refuses it without
    ``pad_small_map=True``; here it behaves as with ``pad_small_map=True``).
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0,
                 pad_small_map: bool = False, **kwargs):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f'shift_size must be in [0, window_size={window_size}), '
                             f'got {shift_size}')
        self.window_size = window_size
        self.shift_size = shift_size
        self.pad_small_map = pad_small_map
        self.w_msa = WindowMSA(embed_dims, num_heads, (window_size, window_size), **kwargs)
        # per (h, w, shift, device): the shifted-window mask and the token order of the shift
        self._masks: Dict[tuple, torch.Tensor] = {}
        self._orders: Dict[tuple, Tuple[torch.Tensor, torch.Tensor]] = {}

    def _cached(self, cache: dict, h: int, w: int, shift: int, device, make):
        key = (h, w, shift, str(device))
        value = cache.get(key)
        if value is None:
            if len(cache) > 16:  # many input sizes (multi-scale training): stay small
                cache.clear()
            value = cache[key] = make(h, w, self.window_size, shift, device)
        return value

    def _mask(self, h: int, w: int, shift: int, device) -> torch.Tensor:
        if is_tracing():  # sizes are symbolic: compute in the graph, never a cached constant
            return shifted_window_mask(h, w, self.window_size, shift, device)
        return self._cached(self._masks, h, w, shift, device, shifted_window_mask)

    def _attend(self, x: torch.Tensor, shift: int) -> torch.Tensor:
        """Windowed attention of a padded ``(B, Hp, Wp, C)`` map rolled by ``-shift``."""
        b, hp, wp, c = x.shape
        ws = self.window_size
        mask = self._mask(hp, wp, shift, x.device) if shift else None
        if shift and not is_exporting():
            # roll + partition (and reverse + roll back) as one gather each; traced and compiled
            # graphs keep torch.roll (symbolic sizes; the compiler fuses it itself)
            order, inverse = self._cached(self._orders, hp, wp, shift, x.device,
                                          shifted_window_order)
            windows = reorder_tokens(x.reshape(b, hp * wp, c), order, inverse)
            windows = self.w_msa(windows.view(b * (hp // ws) * (wp // ws), ws * ws, c), mask=mask)
            return reorder_tokens(windows.view(b, hp * wp, c), inverse, order).view(b, hp, wp, c)
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        x = window_reverse(self.w_msa(window_partition(x, ws), mask=mask), ws, hp, wp)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window_size
        tracing = is_tracing()
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        if tracing or pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        if not self.shift_size:
            x = self._attend(x, 0)
        elif self.pad_small_map:
            x = self._attend(x, self.shift_size)
        elif tracing:
            # The shift is dropped where a side equals the window: a size-dependent choice,
            # made in the graph (both results, one kept) so other input sizes stay right.
            h_t, w_t = torch.as_tensor(h), torch.as_tensor(w)
            smaller_side_is_window = torch.minimum(h_t, w_t) == ws
            x = torch.where(smaller_side_is_window, self._attend(x, 0),
                            self._attend(x, self.shift_size))
        else:
            x = self._attend(x, 0 if min(h, w) == ws else self.shift_size)
        if tracing or pad_b or pad_r:
            x = x[:, :h, :w, :]
        return x
