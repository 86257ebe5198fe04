"""SegNeXt's MSCAN building blocks (multi-scale convolutional attention), with mmseg 1.2.2's
parameter names: ``StemConv`` (``proj.0/1/3/4``), ``OverlapPatchEmbed`` (``proj``, ``norm``),
``MSCABlock`` (``layer_scale_1/2``, ``norm1``, ``attn.proj_1``,
``attn.spatial_gating_unit.conv0``, ``conv{i}_1``/``conv{i}_2``, ``conv3``, ``attn.proj_2``,
``norm2``, ``mlp.fc1``/``dwconv``/``fc2``).

Everything works on ``(B, C, H, W)`` maps (mmseg's blocks take ``(B, H*W, C)`` tokens and turn
them into maps and back in every block: the same numbers, two copies fewer per block).
"""
from typing import Sequence

import torch
from torch import nn

from .drop import DropPath
from .mmcv_bricks import build_activation_layer, build_norm_layer


class MSCAMlp(nn.Module):
    """1x1 conv -> 3x3 depthwise conv -> act -> dropout -> 1x1 conv -> dropout."""

    def __init__(self, channels: int, hidden: int, act_cfg: dict, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, bias=True, groups=hidden)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.dwconv(self.fc1(x))))))


class StemConv(nn.Module):
    """Two stride-2 3x3 convs (to ``out_channels // 2``, then ``out_channels``), each followed by
    a norm, an activation between them: stride 4."""

    def __init__(self, in_channels: int, out_channels: int, act_cfg: dict, norm_cfg: dict):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, out_channels // 2, 3, 2, 1),
            build_norm_layer(norm_cfg, out_channels // 2)[1],
            build_activation_layer(act_cfg),
            nn.Conv2d(out_channels // 2, out_channels, 3, 2, 1),
            build_norm_layer(norm_cfg, out_channels)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class OverlapPatchEmbed(nn.Module):
    """A ``patch_size`` conv with ``stride`` and ``patch_size // 2`` padding, then a norm."""

    def __init__(self, patch_size: int, stride: int, in_channels: int, embed_dim: int,
                 norm_cfg: dict):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride, patch_size // 2)
        self.norm = build_norm_layer(norm_cfg, embed_dim)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


class MSCAAttention(nn.Module):
    """Depthwise ``conv0`` (kernel ``kernel_sizes[0]``), then per further kernel a pair of
    depthwise strip convs (``(1, k)`` then ``(k, 1)``) on its output; the sum of all goes through
    a 1x1 ``conv3`` and gates the input (``attn * x``)."""

    def __init__(self, channels: int, kernel_sizes: Sequence, paddings: Sequence):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, kernel_sizes[0], padding=paddings[0],
                               groups=channels)
        self.num_branches = len(kernel_sizes) - 1
        for i, (kernel, pad) in enumerate(zip(kernel_sizes[1:], paddings[1:])):
            kernel, pad = _pair(kernel), _pair(pad)
            self.add_module(f'conv{i}_1', nn.Conv2d(channels, channels, kernel, padding=pad,
                                                    groups=channels))
            self.add_module(f'conv{i}_2', nn.Conv2d(channels, channels, kernel[::-1],
                                                    padding=pad[::-1], groups=channels))
        self.conv3 = nn.Conv2d(channels, channels, 1)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the same convs without the named-branch lookup
        (``layers.scripting.ScriptableGate`` of a ``ScriptableSum``)."""
        from .scripting import ScriptableGate, ScriptableSum, keep_source
        branches = [nn.Sequential(self._modules[f'conv{i}_1'], self._modules[f'conv{i}_2'])
                    for i in range(self.num_branches)]
        return keep_source(ScriptableGate(nn.Sequential(ScriptableSum(self.conv0, branches),
                                                        self.conv3)), self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv0(x)
        total = attn
        for i in range(self.num_branches):
            branch = getattr(self, f'conv{i}_2')(getattr(self, f'conv{i}_1')(attn))
            total = total + branch
        return self.conv3(total) * x


class MSCASpatialAttention(nn.Module):
    """``x + proj_2(MSCA(act(proj_1(x))))``."""

    def __init__(self, channels: int, kernel_sizes: Sequence, paddings: Sequence,
                 act_cfg: dict):
        super().__init__()
        self.proj_1 = nn.Conv2d(channels, channels, 1)
        self.activation = build_activation_layer(act_cfg)
        self.spatial_gating_unit = MSCAAttention(channels, kernel_sizes, paddings)
        self.proj_2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class MSCABlock(nn.Module):
    """``x + drop_path(layer_scale_1 * attn(norm1(x)))``, then
    ``x + drop_path(layer_scale_2 * mlp(norm2(x)))``; the layer scales start at 0.01 (mmseg)."""

    def __init__(self, channels: int, kernel_sizes: Sequence, paddings: Sequence,
                 mlp_ratio: float = 4., drop: float = 0., drop_path: float = 0.,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='SyncBN', requires_grad=True)):
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, channels)[1]
        self.attn = MSCASpatialAttention(channels, kernel_sizes, paddings, act_cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = build_norm_layer(norm_cfg, channels)[1]
        self.mlp = MSCAMlp(channels, int(channels * mlp_ratio), act_cfg, drop)
        self.layer_scale_1 = nn.Parameter(torch.full((channels,), 1e-2))
        self.layer_scale_2 = nn.Parameter(torch.full((channels,), 1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))
