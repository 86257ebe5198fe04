"""BEiT-style relative position bias: a learned table of one bias per head for every 2-D offset
between two patches of a ``Wh x Ww`` window, plus three entries for the class token
(class-to-patch, patch-to-class, class-to-class), as BEiT, mmpretrain, mmseg and timm lay it out.

Table: ``((2 Wh - 1) * (2 Ww - 1) + 3, num_heads)``; the offset ``(dh, dw)`` sits at row
``(dh + Wh - 1) * (2 Ww - 1) + (dw + Ww - 1)``, the class-token rows are the last three.
``relative_position_index`` is the ``(Wh Ww + 1, Wh Ww + 1)`` lookup into it (class token first).

Two resizes, for two purposes:

* :func:`resize_rel_pos_table_geometric`, at load time: the geometric-sequence cubic-spline
  interpolation of BEiT's fine-tuning code that mmseg's ``BEiT.resize_rel_pos_embed`` and
  mmpretrain's ``resize_relative_position_bias_table`` apply (they call scipy's ``interp2d``,
  gone from scipy >= 1.14: the same not-a-knot cubic spline is computed here with numpy).
* :func:`relative_position_bias`, at forward: a grid that fits inside the table's window reads
  its exact offsets from the table; a larger one resizes the table's offset grid bicubically
  (differentiable). mmpretrain/mmseg/timm accept only the window's own size there.
"""
import functools
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .pos_embed import is_tracing

NUM_CLS_ENTRIES = 3  # cls->patch, patch->cls, cls->cls


def num_relative_distance(window: Sequence[int]) -> int:
    return (2 * window[0] - 1) * (2 * window[1] - 1) + NUM_CLS_ENTRIES


@functools.lru_cache(maxsize=32)
def _index(grid: Tuple[int, int], table_window: Tuple[int, int]) -> torch.Tensor:
    h, w = grid
    th, tw = table_window
    # on the CPU whatever the default device (a model built under torch.device('meta'))
    rows, cols = torch.arange(h, device='cpu'), torch.arange(w, device='cpu')
    coords = torch.stack(torch.meshgrid(rows, cols, indexing='ij'))
    coords = coords.flatten(1)  # (2, h*w)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (hw, hw, 2)
    rows = (rel[..., 0] + th - 1) * (2 * tw - 1) + (rel[..., 1] + tw - 1)
    total = num_relative_distance(table_window)
    index = torch.zeros((h * w + 1,) * 2, dtype=torch.long, device='cpu')
    index[1:, 1:] = rows
    index[0, 0:] = total - 3
    index[0:, 0] = total - 2
    index[0, 0] = total - 1
    return index


def relative_position_index(grid: Sequence[int],
                            table_window: Optional[Sequence[int]] = None) -> torch.Tensor:
    """``(h w + 1, h w + 1)`` rows of a table made for ``table_window`` (default: ``grid``) that
    hold the bias between the tokens of an ``h x w`` grid (class token first); ``grid`` must fit
    in ``table_window``. A new tensor (the cache keeps its own)."""
    grid = (int(grid[0]), int(grid[1]))
    table_window = grid if table_window is None else (int(table_window[0]),
                                                      int(table_window[1]))
    if grid[0] > table_window[0] or grid[1] > table_window[1]:
        raise ValueError(f'grid {grid} does not fit in the table window {table_window}')
    return _index(grid, table_window).clone()


def resize_table_bicubic(table: torch.Tensor, window: Sequence[int],
                         new_window: Sequence[int]) -> torch.Tensor:
    """The offset grid of ``table`` (made for ``window``) resized bicubically to ``new_window``'s
    (class-token rows kept); differentiable."""
    (wh, ww), (nh, nw) = window, new_window
    heads = table.shape[1]
    grid = table[:-NUM_CLS_ENTRIES].reshape(2 * wh - 1, 2 * ww - 1, heads).permute(2, 0, 1)
    grid = F.interpolate(grid[None].float(), size=(2 * nh - 1, 2 * nw - 1), mode='bicubic',
                         align_corners=False)[0].to(table.dtype)
    return torch.cat((grid.permute(1, 2, 0).reshape(-1, heads), table[-NUM_CLS_ENTRIES:]))


def relative_position_bias(table: torch.Tensor, window: Tuple[int, int], grid: Tuple[int, int],
                           index: Optional[torch.Tensor] = None,
                           with_cls_token: bool = True) -> torch.Tensor:
    """``(num_heads, N, N)`` additive attention bias for the tokens of an ``h x w`` ``grid``
    (``N = h w + 1`` with the class token, ``h w`` without), from a ``table`` made for
    ``window``. ``index``: the window's own lookup (used when ``grid == window``)."""
    if is_tracing():  # sizes are traced values: the branch-free path (export --dynamic)
        bias = _traced_bias(table, window, grid)
        return bias if with_cls_token else bias[:, 1:, 1:]
    grid = (int(grid[0]), int(grid[1]))
    if grid != tuple(window) or index is None:
        target = (max(grid[0], window[0]), max(grid[1], window[1]))
        if target != tuple(window):
            table = resize_table_bicubic(table, window, target)
        index = _index(grid, target).to(table.device)
    n = grid[0] * grid[1] + 1
    bias = table[index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
    return bias if with_cls_token else bias[:, 1:, 1:]


def _traced_bias(table: torch.Tensor, window: Tuple[int, int], grid) -> torch.Tensor:
    """:func:`relative_position_bias` with tensor ops only, so a trace stays valid for other
    grids: the table's offset grid is always resized to ``max(grid, window)`` (the identity at
    the window's own size) and the lookup is computed, not cached."""
    h, w = (torch.as_tensor(v) for v in grid)
    (wh, ww), heads = window, table.shape[1]
    th, tw = h.clamp(min=wh), w.clamp(min=ww)
    offsets = table[:-NUM_CLS_ENTRIES].reshape(2 * wh - 1, 2 * ww - 1, heads).permute(2, 0, 1)
    offsets = F.interpolate(offsets[None].float(), size=(2 * th - 1, 2 * tw - 1),
                            mode='bicubic', align_corners=False)[0].to(table.dtype)
    full = torch.cat((offsets.permute(1, 2, 0).reshape(-1, heads), table[-NUM_CLS_ENTRIES:]))
    ys = torch.arange(h)[:, None].expand(h, w).reshape(-1)
    xs = torch.arange(w)[None, :].expand(h, w).reshape(-1)
    rows = (ys[:, None] - ys[None, :] + th - 1) * (2 * tw - 1) + (xs[:, None] - xs[None, :]
                                                                   + tw - 1)
    total = (2 * th - 1) * (2 * tw - 1) + NUM_CLS_ENTRIES
    top = torch.cat((torch.zeros_like(rows[:1, :1]) + total - 1,
                     torch.zeros_like(rows[:1]) + total - 3), dim=1)
    rest = torch.cat((torch.zeros_like(rows[:, :1]) + total - 2, rows), dim=1)
    index = torch.cat((top, rest))
    n = h * w + 1
    return full[index.reshape(-1)].reshape(n, n, heads).permute(2, 0, 1)


# ----- load-time resize (BEiT's geometric interpolation) ---------------------------------------
def _bspline_basis(knots: np.ndarray, degree: int, points: np.ndarray) -> np.ndarray:
    """``(len(points), len(knots) - degree - 1)`` values of the B-spline basis (Cox-de Boor);
    points are clamped to the knot range (as FITPACK's evaluation does)."""
    points = np.clip(points, knots[degree], knots[-degree - 1])
    n = len(knots) - 1
    basis = np.zeros((len(points), n))
    for i in range(n):
        inside = (knots[i] <= points) & (points < knots[i + 1])
        basis[inside, i] = 1.0
    last = np.nonzero(knots[:-1] < knots[-1])[0][-1]  # the right end belongs to the last span
    basis[points >= knots[-1], last] = 1.0
    for k in range(1, degree + 1):
        nxt = np.zeros((len(points), n - k))
        for i in range(n - k):
            left, right = knots[i + k] - knots[i], knots[i + k + 1] - knots[i + 1]
            if left > 0:
                nxt[:, i] += (points - knots[i]) / left * basis[:, i]
            if right > 0:
                nxt[:, i] += (knots[i + k + 1] - points) / right * basis[:, i + 1]
        basis = nxt
    return basis


def _spline_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(len(dst), len(src))`` linear map: values at ``src`` -> the interpolating not-a-knot
    cubic spline through them, read at ``dst`` (FITPACK's interpolating spline, s=0)."""
    n = len(src)
    if n < 4:  # too few points for a cubic: linear interpolation
        return np.stack([np.interp(dst, src, np.eye(n)[j]) for j in range(n)], axis=1)
    knots = np.concatenate([[src[0]] * 4, src[2:-2], [src[-1]] * 4])
    collocation = _bspline_basis(knots, 3, src)
    return _bspline_basis(knots, 3, dst) @ np.linalg.inv(collocation)


def _geometric_positions(src_side: int, dst_side: int) -> Tuple[np.ndarray, np.ndarray]:
    """BEiT's sample positions: the ``src_side`` table entries spread with a geometric ratio
    found by bisection so they span the ``dst_side`` new entries (``-t..t``)."""
    def progression(r, n):
        return (1.0 - r ** n) / (1.0 - r)

    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if progression(q, src_side // 2) > dst_side // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1
    for i in range(src_side // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    src = np.array([-d for d in reversed(dis)] + [0] + dis, dtype=np.float64)
    t = dst_side // 2.0
    return src, np.arange(-t, t + 0.1, 1.0)


def resize_rel_pos_table_geometric(table: torch.Tensor, src_window: Sequence[int],
                                   dst_window: Sequence[int]) -> torch.Tensor:
    """A checkpoint's ``table`` for ``src_window`` -> one for ``dst_window``: each side of the
    offset grid resampled with BEiT's geometric positions and a cubic spline (mmseg's and
    mmpretrain's load-time resize; a non-square window resizes each side on its own), the three
    class-token rows kept."""
    (sh, sw), (dh, dw) = src_window, dst_window
    heads = table.shape[1]
    grid = table[:-NUM_CLS_ENTRIES].double().cpu().numpy().reshape(2 * sh - 1, 2 * sw - 1, heads)
    rows = _spline_matrix(*_geometric_positions(2 * sh - 1, 2 * dh - 1))
    cols = _spline_matrix(*_geometric_positions(2 * sw - 1, 2 * dw - 1))
    new = np.einsum('ri,ijh,cj->rch', rows, grid, cols).reshape(-1, heads)
    new = torch.from_numpy(new).to(table.dtype).to(table.device)
    return torch.cat((new, table[-NUM_CLS_ENTRIES:]))


def table_window(num_rows: int, like: Optional[Sequence[int]] = None) -> Optional[Tuple[int, int]]:
    """The window of a table with ``num_rows`` rows: square, or ``like``'s aspect when that
    fits; ``None`` when no window gives that many rows."""
    side = int(round((num_rows - NUM_CLS_ENTRIES) ** 0.5))
    if side * side == num_rows - NUM_CLS_ENTRIES and side % 2 == 1:
        return (side + 1) // 2, (side + 1) // 2
    if like is not None and num_rows == num_relative_distance(like):
        return tuple(like)
    return None


class RelativePositionBias(nn.Module):
    """A relative position bias shared by every layer (``use_shared_rel_pos_bias``): keys
    ``relative_position_bias_table`` and ``relative_position_index`` (mmpretrain's)."""

    def __init__(self, window_size: Sequence[int], num_heads: int):
        super().__init__()
        self.window_size = (int(window_size[0]), int(window_size[1]))
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(num_relative_distance(self.window_size), num_heads))
        self.register_buffer('relative_position_index',
                             relative_position_index(self.window_size))

    def forward(self, grid: Tuple[int, int], with_cls_token: bool = True) -> torch.Tensor:
        return relative_position_bias(self.relative_position_bias_table, self.window_size, grid,
                                      self.relative_position_index, with_cls_token)
