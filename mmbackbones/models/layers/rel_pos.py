"""ViTDet's pieces (``Exploring Plain ViT Backbones for Object Detection``,
https://arxiv.org/abs/2203.16527): non-overlapping windows over a token map padded to a multiple
of the window, and the decomposed relative position bias (one table per axis).

Shapes: token maps are ``(B, H, W, C)``; a relative position table of an axis of ``n`` tokens
is ``(2n - 1, head_dims)``; it is resized linearly when the attended axis has another length.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def window_partition(x: torch.Tensor, window: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """``(B, H, W, C)`` -> ``(B * nW, window * window, C)`` windows (the map zero-padded at the
    bottom/right to multiples of ``window``) and the padded ``(Hp, Wp)``."""
    b, h, w, c = x.shape
    pad_h, pad_w = (window - h % window) % window, (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c).transpose(2, 3)
    return x.reshape(-1, window * window, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, window: int, padded_hw: Sequence[int],
                       hw: Sequence[int]) -> torch.Tensor:
    """The inverse of :func:`window_partition`: ``(B * nW, window * window, C)`` ->
    ``(B, H, W, C)`` with the padding cut off."""
    hp, wp = padded_hw
    h, w = hw
    c = windows.shape[-1]
    b = windows.shape[0] // (hp * wp // window // window)
    x = windows.view(b, hp // window, wp // window, window, window, c).transpose(2, 3)
    x = x.reshape(b, hp, wp, c)
    if hp > h or wp > w:
        x = x[:, :h, :w]
    return x


def relative_table(table: torch.Tensor, q_size: int, k_size: int) -> torch.Tensor:
    """``(L, D)`` table -> ``(q_size, k_size, D)`` entries for each query/key offset; the
    table is resized linearly to ``2 * max(q_size, k_size) - 1`` rows when it has another
    length, and offsets are scaled when the two axes differ (as ViTDet)."""
    length = 2 * max(q_size, k_size) - 1
    if table.shape[0] != length:
        table = F.interpolate(table.t()[None].float(), size=length,
                              mode='linear').to(table.dtype)[0].t()
    q_coords = torch.arange(q_size, device=table.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=table.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return table[offsets.long()]


def decomposed_rel_pos_bias(q: torch.Tensor, table_h: torch.Tensor, table_w: torch.Tensor,
                            hw: Sequence[int]) -> torch.Tensor:
    """The additive attention bias ``(B, heads, H * W, H * W)`` of queries ``q``
    ``(B, heads, H * W, D)`` (unscaled) on an ``(H, W)`` grid attending to the same grid:
    ``bias[(i, j), (k, l)] = q_ij . Rh[i - k] + q_ij . Rw[j - l]``."""
    h, w = int(hw[0]), int(hw[1])
    b, heads, n, d = q.shape
    rh, rw = relative_table(table_h, h, h), relative_table(table_w, w, w)
    r_q = q.reshape(b, heads, h, w, d)
    # einsum returns permuted views; the broadcast sum would take their layout, and the
    # reshape below would then copy the whole (N, N) map: made contiguous here (1/w its size)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, rh).contiguous()
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, rw).contiguous()
    bias = rel_h[..., :, None] + rel_w[..., None, :]
    return bias.reshape(b, heads, n, h * w)
