"""Absolute position embeddings: resizing to another patch grid.

A ViT-style position embedding is a ``(1, L, C)`` tensor holding ``num_extra_tokens`` leading
entries (class token, distillation token, ...) followed by ``H * W`` entries of a patch grid in
row-major order. Resizing interpolates the grid part and keeps the extra tokens unchanged.
"""
import math
import sys
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ...utils.validation import check_positive_int

INTERPOLATE_MODES = ('nearest', 'bilinear', 'bicubic', 'area', 'nearest-exact')


def _as_int(value):
    """An int, a ``SymInt`` (dynamic shapes, kept symbolic) or a 0-d integer tensor (sizes under
    ``torch.jit.trace``) -> int-like; anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, torch.SymInt)):
        return value
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        # a traced size stays a tensor so that the graph keeps it symbolic
        return value if torch.jit.is_tracing() else int(value)
    return None


def _pair(value, name: str) -> Tuple[int, int]:
    single = _as_int(value)
    if single is not None:
        return single, single
    if isinstance(value, (tuple, list, torch.Size)) and len(value) == 2:
        pair = (_as_int(value[0]), _as_int(value[1]))
        if pair[0] is not None and pair[1] is not None:
            return pair
    raise TypeError(f'{name} must be an int or a pair of ints (H, W), got {value!r}')


def check_pair(name: str, value) -> Tuple[int, int]:
    """Validate an image/patch size argument: a positive int or a pair of them -> ``(h, w)``.
    Raises ``ValueError``/``TypeError`` naming ``name``."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]  # mmseg/mmdet accept a 1-tuple
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return check_positive_int(name, value[0]), check_positive_int(name, value[1])
    if isinstance(value, (list, tuple)):
        raise ValueError(f'{name} must be an int or a pair (H, W), got {value!r}')
    v = check_positive_int(name, value)
    return v, v


def is_tracing() -> bool:
    """True while ``torch.jit.trace``/``torch.onnx.export`` records: sizes are then traced
    values, so code that branches on a size must take the branch-free path to stay valid for
    other input sizes (``export --dynamic``)."""
    return torch.jit.is_tracing()


def is_exporting() -> bool:
    """TorchScript/ONNX tracing or scripting, torch.compile or torch.export: code with eager-only
    shortcuts (custom autograd functions, mkldnn kernels) keeps to standard ops there."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    if torch.compiler.is_compiling():
        return True
    onnx = sys.modules.get('torch.onnx')
    return bool(onnx is not None and onnx.is_in_onnx_export())


def infer_grid_shape(num_patches: int, hint: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """The ``(H, W)`` grid holding ``num_patches`` entries.

    A square grid when ``num_patches`` is a perfect square; otherwise the grid with the aspect
    ratio of ``hint`` (the grid the model was built for). Raises ``ValueError`` when neither fits.
    """
    side = math.isqrt(num_patches)
    if side * side == num_patches:
        return side, side
    if hint is not None:
        hint_h, hint_w = _pair(tuple(hint), 'hint')
        # H * W = n with H / W = hint_h / hint_w  ->  H = sqrt(n * hint_h / hint_w)
        h = round(math.sqrt(num_patches * hint_h / hint_w))
        if h > 0 and num_patches % h == 0:
            return h, num_patches // h
    raise ValueError(f'cannot infer the patch grid of a position embedding with {num_patches} '
                     f'patch entries: not a square and not the aspect ratio of {hint}; pass '
                     f'src_shape explicitly')


def resize_pos_embed(pos_embed: torch.Tensor,
                     src_shape: Optional[Sequence[int]],
                     dst_shape: Sequence[int],
                     mode: str = 'bicubic',
                     num_extra_tokens: int = 1,
                     antialias: bool = False) -> torch.Tensor:
    """Resize a ``(1, num_extra_tokens + Hs * Ws, C)`` position embedding to an ``(Hd, Wd)`` grid.

    Args:
        pos_embed: ``(1, L, C)`` (any leading batch size works).
        src_shape: ``(Hs, Ws)`` grid of ``pos_embed``; ``None`` infers a square grid.
        dst_shape: ``(Hd, Wd)`` grid wanted.
        mode: ``F.interpolate`` mode (``'bicubic'`` by default, as mmpretrain and timm).
        num_extra_tokens: leading non-grid entries, copied unchanged (0 when there is none).
        antialias: passed to ``F.interpolate`` (timm uses ``True`` when downsizing).

    Returns:
        ``(1, num_extra_tokens + Hd * Wd, C)`` in the dtype of ``pos_embed``. The input itself
        is returned when the grids are equal.
    """
    if pos_embed.dim() != 3:
        raise ValueError(f'pos_embed must be (1, L, C), got shape {tuple(pos_embed.shape)}')
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f'mode must be one of {INTERPOLATE_MODES}, got {mode!r}')
    if num_extra_tokens < 0:
        raise ValueError(f'num_extra_tokens must be >= 0, got {num_extra_tokens}')
    n, length, channels = pos_embed.shape
    dst_h, dst_w = _pair(tuple(dst_shape), 'dst_shape')
    num_patches = length - num_extra_tokens
    if src_shape is None:
        src_h, src_w = infer_grid_shape(num_patches)
    else:
        src_h, src_w = _pair(tuple(src_shape), 'src_shape')
    if src_h * src_w != num_patches:
        raise ValueError(f'pos_embed has {length} entries, which is not {num_extra_tokens} extra '
                         f'tokens + a {src_h}x{src_w} grid ({src_h * src_w} entries)')
    if not is_tracing() and (src_h, src_w) == (dst_h, dst_w):
        return pos_embed  # (traced: always interpolate; at an equal size it is the identity)
    extra = pos_embed[:, :num_extra_tokens]
    grid = pos_embed[:, num_extra_tokens:].reshape(n, src_h, src_w, channels).permute(0, 3, 1, 2)
    # bicubic interpolation is only implemented for floating types >= fp32 on some backends
    kwargs = dict(align_corners=False) if mode in ('bilinear', 'bicubic') else {}
    if antialias and mode in ('bilinear', 'bicubic'):
        kwargs['antialias'] = True
    grid = F.interpolate(grid.float(), size=(dst_h, dst_w), mode=mode, **kwargs)
    grid = grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)
    return torch.cat((extra, grid), dim=1)


def adapt_pos_embed(ckpt: torch.Tensor, target_shape: Sequence[int], num_extra_tokens: int,
                    grid: Sequence[int], mode: str = 'bicubic') -> Tuple[torch.Tensor, str]:
    """Fit a checkpoint's ``(1, L, C)`` position embedding to a model's ``target_shape`` whose
    ``num_extra_tokens`` (0 or 1) precede a ``grid``: the class-token entry is dropped or added
    (zeros), the grid resized with ``mode``. Returns ``(tensor, note)``; ``ckpt`` itself (and
    a note saying why, or ``''`` when it already fits) when it cannot be read.
    """
    grid = tuple(grid)
    if tuple(ckpt.shape) == tuple(target_shape) or ckpt.dim() != 3 \
            or ckpt.shape[2] != target_shape[2]:
        return ckpt, ''  # equal, or not a pos_embed we can read: the loader reports it
    length = ckpt.shape[1]
    # how many leading non-grid entries the checkpoint has: the model's count or the other
    # one (0 <-> 1). Prefer a reading that gives exactly the model's grid (9 entries are
    # 1 + 2x4 for a 2x4 model, not 3x3), then the model's count.
    readings = []
    for ckpt_extra in (num_extra_tokens, 1 - num_extra_tokens):
        try:
            readings.append((ckpt_extra, infer_grid_shape(length - ckpt_extra, hint=grid)))
        except ValueError:
            if length - ckpt_extra == grid[0] * grid[1]:
                readings.append((ckpt_extra, grid))
    readings.sort(key=lambda r: r[1] != grid)
    if not readings:
        return ckpt, (f'pos_embed of shape {tuple(ckpt.shape)} in the checkpoint: cannot infer '
                      f'its patch grid, left as is (model: {tuple(target_shape)})')
    ckpt_extra, src = readings[0]
    shape, entry = tuple(ckpt.shape), ''
    if ckpt_extra > num_extra_tokens:  # checkpoint has a cls token the model lacks
        ckpt, entry = ckpt[:, 1:], 'its class entry dropped'
    elif ckpt_extra < num_extra_tokens:  # timm no_embed_class: cls gets no position
        ckpt = torch.cat((ckpt.new_zeros(1, 1, ckpt.shape[2]), ckpt), dim=1)
        entry = 'a zero class entry added'
    resized = resize_pos_embed(ckpt, src, grid, mode, num_extra_tokens)
    if tuple(src) == tuple(grid):
        return resized, f'pos_embed {shape} of the checkpoint: {entry} -> {tuple(resized.shape)}'
    return resized, (f'Resized pos_embed from {shape} (grid {src[0]}x{src[1]}) to '
                     f'{tuple(resized.shape)} (grid {grid[0]}x{grid[1]})' +
                     (f', {entry}' if entry else ''))
