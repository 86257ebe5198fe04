"""ViTDet's simple feature pyramid: strides 4..32 (and 64) from one stride-16 map.

``Exploring Plain Vision Transformer Backbones for Object Detection``
(https://arxiv.org/abs/2203.16527). Each scale factor builds one branch from the single map of
a plain ViT: ``4``: two 2x2 stride-2 transposed convs (norm + GELU between), ``2``: one,
``1``: none, ``0.5``: 2x2 max pooling; then a 1x1 and a 3x3 conv, each followed by the norm
(bias only without a norm). Branches are named ``simfp_{log2(stride)}`` with detectron2's
layout, so the ``backbone.simfp_*`` keys of a detectron2/detrex ViTDet checkpoint load as they
are. ``top_block=True`` adds detectron2's ``LastLevelMaxPool`` (1x1 max pool, stride 2) on the
last level (``p6``).

Shapes: ``(N, C, H, W)`` (or a 1-tuple of it) -> a tuple of ``(N, out_channels, H*s, W*s)``
for each scale ``s`` (then the pooled top level); output names ``p{log2(stride)}``.
"""
import math
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import MODELS
from ...utils.validation import (accepts_config_containers, check_choice, check_positive_int,
                                 checks_keywords)
from ..layers.layer_norm2d import LayerNorm2d

SCALES = (4.0, 2.0, 1.0, 0.5)
NORMS = ('LN', '')


class ConvNorm(nn.Conv2d):
    """``nn.Conv2d`` followed by its ``norm`` (detectron2's ``Conv2d(..., norm=...)`` names)."""

    def __init__(self, *args, norm=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return x if self.norm is None else self.norm(x)


def _norm(norm: str, channels: int):
    return LayerNorm2d(channels, eps=1e-6) if norm == 'LN' else None


def _nonfinal(norm: str, channels: int) -> nn.Module:
    return LayerNorm2d(channels, eps=1e-6) if norm == 'LN' else nn.Identity()


@MODELS.register_module()
class SimpleFeaturePyramid(nn.Module):
    """Args:
        in_channels: channels of the input map (the ViT's ``embed_dims``), or a list of that one
            value (what ``in_channels='auto'`` resolves to on top of a one-output backbone).
        out_channels: channels of every output.
        scale_factors: from ``(4.0, 2.0, 1.0, 0.5)``, in any subset, largest first.
        norm: ``'LN'`` (channel LayerNorm, eps 1e-6) or ``''`` (none; convs get biases).
        top_block: add the ``p6`` level (max pool of the last one).
        in_stride: stride of the input map (16 for a ViT-B/16); names the outputs.
    """

    @checks_keywords
    @accepts_config_containers
    def __init__(self, in_channels: Union[int, Sequence[int]], out_channels: int = 256,
                 scale_factors: Sequence[float] = SCALES, norm: str = 'LN',
                 top_block: bool = False, in_stride: int = 16):
        super().__init__()
        if isinstance(in_channels, (list, tuple)):
            if len(in_channels) != 1:
                raise ValueError(f'SimpleFeaturePyramid takes one input map: in_channels must '
                                 f'be an int or a list of one, got {in_channels!r}')
            in_channels = in_channels[0]
        check_positive_int('in_channels', in_channels)
        check_positive_int('out_channels', out_channels)
        check_choice('norm', norm, NORMS)
        self.in_stride = check_positive_int('in_stride', in_stride)
        scales = tuple(float(s) for s in scale_factors)
        if not scales or any(s not in SCALES for s in scales) or \
                list(scales) != sorted(scales, reverse=True) or len(set(scales)) != len(scales):
            raise ValueError(f'scale_factors must be distinct values of {SCALES}, largest first, '
                             f'got {scale_factors!r}')
        self.scale_factors = scales
        dim, bias = in_channels, norm == ''
        strides = []
        for scale in scales:
            out_dim = dim
            if scale == 4.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2),
                          _nonfinal(norm, dim // 2), nn.GELU(),
                          nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2)]
                out_dim = dim // 4
            elif scale == 2.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)]
                out_dim = dim // 2
            elif scale == 1.0:
                layers = []
            else:
                layers = [nn.MaxPool2d(kernel_size=2, stride=2)]
            layers += [ConvNorm(out_dim, out_channels, 1, bias=bias,
                                norm=_norm(norm, out_channels)),
                       ConvNorm(out_channels, out_channels, 3, padding=1, bias=bias,
                                norm=_norm(norm, out_channels))]
            stride = int(in_stride / scale)
            strides.append(stride)
            self.add_module(f'simfp_{int(math.log2(stride))}', nn.Sequential(*layers))
        self.top_block = bool(top_block)
        if self.top_block:
            strides.append(strides[-1] * 2)
        self.out_strides = tuple(strides)
        self.out_channels = (out_channels,) * len(strides)
        self.out_names = tuple(f'p{int(math.log2(s))}' for s in strides)

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Tuple[torch.Tensor, ...]:
        if isinstance(x, (list, tuple)):
            if len(x) != 1:
                raise ValueError(f'SimpleFeaturePyramid takes one map, got {len(x)}')
            x = x[0]
        outs = [getattr(self, f'simfp_{int(math.log2(int(self.in_stride / s)))}')(x)
                for s in self.scale_factors]
        if self.top_block:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2, padding=0))
        return tuple(outs)
