"""2-D rotary position embedding (RoPE) of EVA-02 for ViT patch tokens.

Each head's channels split in two halves, the first rotated by the token's row, the second by its
column; within a half, channel pairs rotate by the angle ``position * frequency`` with
``frequency_k = theta ** (-2k / half)``. Positions are ``arange(n) / n * ref`` per side, so a grid
of any size spans the positions of the ``ref`` grid the model was trained on.

Two layouts of the per-channel angles exist in the wild:

* ``'interleaved'`` (EVA-02's official code and timm's ``eva02_*``): ``[a0, a0, a1, a1, ...]``,
  each pair of channels rotated by one angle; ``ref`` is the training grid (224 / 14 = 16);
* ``'tiled'`` (mmpretrain 1.2's ``RotaryEmbeddingFast``): ``[a0, a1, ..., a0, a1, ...]`` and
  ``ref = head_dims // 2`` (kept to reproduce mmpretrain's ``ViTEVA02`` outputs).

``interpolate=False`` (detrex's EVA-02 ViTDet with ``intp_freq=False``): positions are the token
indices ``arange(n)`` whatever the grid. A model may ask for several grids (ViTDet's windows and
its global blocks): the tables of the last few grids are cached.

The module has no parameters and no state-dict buffers; it caches the tables of the last grid.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

ROPE_LAYOUTS = ('interleaved', 'tiled')


class RotaryEmbedding2d(nn.Module):
    """``forward((H, W), device)`` -> ``(cos, sin)``, each ``(H * W, head_dims)`` float32.

    Args:
        head_dims: channels of one attention head (a multiple of 4).
        ref_grid: ``(H, W)`` the positions span (``None``: ``head_dims // 2`` on both sides, as
            mmpretrain).
        theta: frequency base.
        layout: ``'interleaved'`` or ``'tiled'`` (module doc).
        interpolate: positions span ``ref_grid`` on any grid (``False``: token indices).
    """

    def __init__(self, head_dims: int, ref_grid: Optional[Sequence[int]] = None,
                 theta: float = 10000., layout: str = 'interleaved', interpolate: bool = True):
        super().__init__()
        if head_dims % 4:
            raise ValueError(f'rotary position embedding needs head dims (embed_dims / '
                             f'num_heads) divisible by 4, got {head_dims}')
        if layout not in ROPE_LAYOUTS:
            raise ValueError(f'rope layout must be one of {ROPE_LAYOUTS}, got {layout!r}')
        self.head_dims, self.theta, self.layout = head_dims, float(theta), layout
        self.interpolate = bool(interpolate)
        half = head_dims // 2
        self.ref_grid = (tuple(ref_grid) if ref_grid is not None else (half, half))
        self._cache: Dict[tuple, Tuple[torch.Tensor, torch.Tensor]] = {}

    def _angles(self, n: int, ref: float) -> torch.Tensor:
        half = self.head_dims // 2
        freq = 1. / self.theta ** (torch.arange(0, half, 2, dtype=torch.float32) / half)
        pos = torch.arange(n, dtype=torch.float32)
        if self.interpolate:
            pos = pos / n * ref
        angles = pos[:, None] * freq[None, :]
        if self.layout == 'interleaved':
            return angles.repeat_interleave(2, dim=-1)
        return angles.repeat(1, 2)

    def forward(self, hw: Sequence[int], device=None) -> Tuple[torch.Tensor, torch.Tensor]:
        h, w = int(hw[0]), int(hw[1])
        key = (h, w, str(device))
        tables = self._cache.get(key)
        if tables is not None and tables[0].is_inference() and \
                not torch.is_inference_mode_enabled():
            tables = None  # made under inference_mode: autograd cannot save them for backward
        if tables is None:
            half = self.head_dims // 2
            ah, aw = self._angles(h, self.ref_grid[0]), self._angles(w, self.ref_grid[1])
            angles = torch.cat((ah[:, None, :].expand(h, w, half),
                                aw[None, :, :].expand(h, w, half)), dim=-1).reshape(h * w, -1)
            tables = (angles.cos().to(device), angles.sin().to(device))
            self._cache.pop(key, None)
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = tables
        return tables

    def extra_repr(self) -> str:
        return (f'head_dims={self.head_dims}, ref_grid={self.ref_grid}, layout={self.layout!r}'
                + ('' if self.interpolate else ', interpolate=False'))


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """``[x0, x1, x2, x3, ...]`` -> ``[-x1, x0, -x3, x2, ...]`` on the last dimension."""
    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               num_prefix: int = 0) -> torch.Tensor:
    """Rotate ``(B, heads, N, D)`` queries or keys; the first ``num_prefix`` tokens (class,
    register tokens) are left as they are."""
    if num_prefix:
        prefix, x = x[:, :, :num_prefix], x[:, :, num_prefix:]
    out = (x.float() * cos + rotate_pairs(x.float()) * sin).to(x.dtype)
    return torch.cat((prefix, out), dim=2) if num_prefix else out
