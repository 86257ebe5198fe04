"""Image to patch tokens: a strided convolution, with padding for sides that are not a multiple
of the patch size. Parameter names (``projection``, ``norm``) follow mmcv's ``PatchEmbed``."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from .mmcv_bricks import build_conv_layer, build_norm_layer
from torch import nn

from .pos_embed import _pair, is_tracing

PADDING_MODES = ('corner', 'same')


class PatchEmbed(nn.Module):
    """``(N, C, H, W)`` image -> ``(N, Hp * Wp, embed_dims)`` tokens and the grid ``(Hp, Wp)``.

    Sides that are not a multiple of the stride are zero-padded up to the next multiple
    (``padding='corner'``: at the bottom/right, as mmcv/mmpretrain; ``'same'``: split between
    both sides), so ``Hp = ceil(H / stride)`` and any input size works.

    Args:
        in_channels: input image channels.
        embed_dims: channels of each token.
        patch_size: kernel size (int or (h, w)).
        stride: defaults to ``patch_size`` (non-overlapping patches).
        padding: ``'corner'`` or ``'same'``.
        bias: bias of the projection.
        norm_cfg: optional norm applied to the tokens (e.g. ``dict(type='LN')``).
        conv_cfg: mmcv conv config of the projection (``None``: ``nn.Conv2d``).
        input_size: an image size; when given, ``init_out_size`` is its token grid.
    """

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 768,
                 patch_size: Union[int, Sequence[int]] = 16,
                 stride: Optional[Union[int, Sequence[int]]] = None,
                 padding: str = 'corner',
                 bias: bool = True,
                 norm_cfg: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None,
                 input_size: Optional[Union[int, Sequence[int]]] = None):
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f'padding must be one of {PADDING_MODES}, got {padding!r}')
        self.patch_size = _pair(patch_size, 'patch_size')
        self.stride = _pair(stride if stride is not None else patch_size, 'stride')
        self.padding = padding
        self.embed_dims = embed_dims
        self.projection = build_conv_layer(conv_cfg, in_channels, embed_dims,
                                           kernel_size=self.patch_size, stride=self.stride,
                                           bias=bias)
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1] if norm_cfg else None
        self.init_input_size = _pair(input_size, 'input_size') if input_size is not None else None
        self.init_out_size = (self.grid_size(self.init_input_size)
                              if input_size is not None else None)

    def _pad_amounts(self, h: int, w: int) -> Tuple[int, int]:
        """Integer arithmetic only, so traced sizes stay symbolic (``export --dynamic``)."""
        (kh, kw), (sh, sw) = self.patch_size, self.stride
        pad_h = ((h + sh - 1) // sh - 1) * sh + kh - h
        pad_w = ((w + sw - 1) // sw - 1) * sw + kw - w
        if kh >= sh and kw >= sw:  # never negative then: no clamp (a clamp would branch)
            return pad_h, pad_w
        return max(pad_h, 0), max(pad_w, 0)

    def grid_size(self, input_size: Sequence[int]) -> Tuple[int, int]:
        """Token grid ``(Hp, Wp)`` of an ``(H, W)`` image (after padding)."""
        h, w = _pair(tuple(input_size), 'input_size')
        pad_h, pad_w = self._pad_amounts(h, w)
        (kh, kw), (sh, sw) = self.patch_size, self.stride
        return (h + pad_h - kh) // sh + 1, (w + pad_w - kw) // sw + 1

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        pad_h, pad_w = self._pad_amounts(x.shape[-2], x.shape[-1])
        if is_tracing() or pad_h or pad_w:
            if self.padding == 'corner':
                x = F.pad(x, (0, pad_w, 0, pad_h))
            else:
                x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        x = self.projection(x)
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return x, hw

    def extra_repr(self) -> str:
        return f'patch_size={self.patch_size}, stride={self.stride}, padding={self.padding!r}'
