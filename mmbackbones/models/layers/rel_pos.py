"""ViTDet's pieces (``Exploring Plain ViT Backbones for Object Detection``,
https://arxiv.org/abs/2203.16527): non-overlapping windows over a token map padded to a multiple
of the window, and the decomposed relative position bias (one table per axis).

Shapes: token maps are ``(B, H, W, C)``; a relative position table of an axis of ``n`` tokens
is ``(2n - 1, head_dims)``; it is resized when the attended axis has another length: linearly
(ViTDet, ``'linear'``) or, EVA's evaluation-time ``interp_type='beit'`` (``'beit'``), by a cubic
spline (not-a-knot, as SciPy's ``interp1d(kind='cubic')``) through source offsets spaced in a
geometric progression (ratio 1.0903078), extrapolated at the ends; as in EVA's code, no gradient
flows through that resize.
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


RESIZE_MODES = ('linear', 'beit')


def _not_a_knot_spline(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The cubic spline through ``(x, y)`` (``y``: ``(n, D)``; not-a-knot ends) at ``t``,
    extrapolated with the end pieces; float64."""
    n = x.numel() - 1
    h = x[1:] - x[:-1]
    a = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    rhs = torch.zeros(n + 1, y.shape[1], dtype=torch.float64)
    slope = (y[1:] - y[:-1]) / h[:, None]
    for i in range(1, n):  # continuity of the first derivative: second derivatives M
        a[i, i - 1], a[i, i], a[i, i + 1] = h[i - 1], 2 * (h[i - 1] + h[i]), h[i]
        rhs[i] = 6 * (slope[i] - slope[i - 1])
    # not-a-knot: a continuous third derivative at the second and the last but one knot
    a[0, 0], a[0, 1], a[0, 2] = h[1], -(h[0] + h[1]), h[0]
    a[n, n - 2], a[n, n - 1], a[n, n] = h[n - 1], -(h[n - 2] + h[n - 1]), h[n - 2]
    m = torch.linalg.solve(a, rhs)
    seg = (torch.searchsorted(x, t, right=True) - 1).clamp(0, n - 1)
    x0, x1, hs = x[seg][:, None], x[seg + 1][:, None], h[seg][:, None]
    tt = t[:, None]
    return (m[seg] * (x1 - tt) ** 3 / (6 * hs) + m[seg + 1] * (tt - x0) ** 3 / (6 * hs)
            + (y[seg] / hs - m[seg] * hs / 6) * (x1 - tt)
            + (y[seg + 1] / hs - m[seg + 1] * hs / 6) * (tt - x0))


def beit_resize(table: torch.Tensor, length: int) -> torch.Tensor:
    """EVA's ``interp_type='beit'`` resize of a ``(L, D)`` table to ``length`` rows (module
    doc); needs ``L >= 5`` (a cubic spline through at least four offsets)."""
    src = table.shape[0]
    if src < 5:
        raise ValueError(f'the cubic (beit) resize of a relative position table needs at least '
                         f'5 rows, got {src}')
    ratio, cur, dis = 1.0903078, 1.0, []
    for i in range(src // 2):
        dis.append(cur)
        cur += ratio ** (i + 1)
    x = torch.tensor([-d for d in reversed(dis)] + [0.] + dis, dtype=torch.float64)
    half = length // 2
    t = torch.arange(-half, half + 0.1, 1.0, dtype=torch.float64)
    y = table.detach().float().cpu().double()
    return _not_a_knot_spline(x, y, t).to(table.dtype).to(table.device)


def relative_table(table: torch.Tensor, q_size: int, k_size: int,
                   mode: str = 'linear') -> torch.Tensor:
    """``(L, D)`` table -> ``(q_size, k_size, D)`` entries for each query/key offset; the
    table is resized (``mode``, module doc) to ``2 * max(q_size, k_size) - 1`` rows when it has
    another length, and offsets are scaled when the two axes differ (as ViTDet)."""
    length = 2 * max(q_size, k_size) - 1
    if table.shape[0] != length:
        if mode == 'beit':
            table = beit_resize(table, length)
        else:
            table = F.interpolate(table.t()[None].float(), size=length,
                                  mode='linear').to(table.dtype)[0].t()
    q_coords = torch.arange(q_size, device=table.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=table.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return table[offsets.long()]


def decomposed_rel_pos_bias(q: torch.Tensor, table_h: torch.Tensor, table_w: torch.Tensor,
                            hw: Sequence[int], mode: str = 'linear') -> torch.Tensor:
    """The additive attention bias ``(B, heads, H * W, H * W)`` of queries ``q``
    ``(B, heads, H * W, D)`` (unscaled) on an ``(H, W)`` grid attending to the same grid:
    ``bias[(i, j), (k, l)] = q_ij . Rh[i - k] + q_ij . Rw[j - l]``."""
    h, w = int(hw[0]), int(hw[1])
    b, heads, n, d = q.shape
    rh, rw = relative_table(table_h, h, h, mode), relative_table(table_w, w, w, mode)
    r_q = q.reshape(b, heads, h, w, d)
    # einsum returns permuted views; the broadcast sum would take their layout, and the
    # reshape below would then copy the whole (N, N) map: made contiguous here (1/w its size)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, rh).contiguous()
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, rw).contiguous()
    bias = rel_h[..., :, None] + rel_w[..., None, :]
    return bias.reshape(b, heads, n, h * w)
