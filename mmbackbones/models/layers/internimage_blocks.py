"""InternImage's building blocks (official parameter names, so the official and detrex state
dicts load as they are): the stem, the DCNv3 block (``InternImageLayer``), a stage
(``InternImageBlock``: blocks, stage norm, optional level-2 post norms, downsampling).

Maps are channels-last ``(N, H, W, C)`` between the stem and the stage outputs, as upstream.
"""
from typing import List, Optional, Sequence

import torch
import torch.utils.checkpoint as cp
from torch import nn

from .dcnv3 import DCNv3, build_activation, format_norm
from .drop import DropPath


class StemLayer(nn.Module):
    """Two 3x3 stride-2 convs (``out // 2`` then ``out`` channels) with ``norm1`` + ``act``
    between them and ``norm2`` after: ``(N, C, H, W)`` -> ``(N, H / 4, W / 4, out)``."""

    def __init__(self, in_channels: int, out_channels: int, act: str, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels // 2, 3, 2, 1)
        self.norm1 = format_norm(norm, out_channels // 2, in_last=False, out_last=False)
        self.act = build_activation(act)
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, 3, 2, 1)
        self.norm2 = format_norm(norm, out_channels, in_last=False, out_last=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


class DownsampleLayer(nn.Module):
    """3x3 stride-2 conv (no bias) doubling the channels, then ``norm``; channels-last in/out."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 3, 2, 1, bias=False)
        self.norm = format_norm(norm, 2 * channels, in_last=False, out_last=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)))


class MLPLayer(nn.Module):
    """``fc1`` -> activation -> dropout -> ``fc2`` -> dropout."""

    def __init__(self, channels: int, hidden: int, act: str, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = build_activation(act)
        self.fc2 = nn.Linear(hidden, channels)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def _ln(channels: int) -> nn.Sequential:
    return format_norm('LN', channels, in_last=True, out_last=True)


class InternImageLayer(nn.Module):
    """One block: a DCNv3 residual and an MLP residual, pre-norm (``norm1``/``norm2``), or
    post-norm (``post_norm``: the norm after the branch), or with ``res_post_norm`` (pre-norm
    plus a norm after each branch, InternImage-H); ``layer_scale`` multiplies each branch by a
    learnt per-channel ``gamma1``/``gamma2`` (pre- or post-norm)."""

    def __init__(self, channels: int, group: int, mlp_ratio: float, drop: float,
                 drop_path: float, act: str, norm: str, post_norm: bool,
                 layer_scale: Optional[float], offset_scale: float, with_cp: bool,
                 dw_kernel_size: Optional[int], res_post_norm: bool,
                 center_feature_scale: bool):
        super().__init__()
        self.post_norm, self.with_cp = post_norm, with_cp
        self.norm1 = _ln(channels)
        self.dcn = DCNv3(channels, kernel_size=3, dw_kernel_size=dw_kernel_size, stride=1,
                         pad=1, dilation=1, group=group, offset_scale=offset_scale,
                         act_layer=act, norm_layer=norm,
                         center_feature_scale=center_feature_scale)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = _ln(channels)
        self.mlp = MLPLayer(channels, int(channels * mlp_ratio), act, drop)
        self.layer_scale = layer_scale is not None
        if self.layer_scale:
            self.gamma1 = nn.Parameter(torch.full((channels, ), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((channels, ), float(layer_scale)))
        # InternImage-H's residual post norms (layer scale takes precedence upstream)
        self.res_post_norm = res_post_norm
        if res_post_norm:
            self.res_post_norm1 = _ln(channels)
            self.res_post_norm2 = _ln(channels)

    def _branch(self, x: torch.Tensor, layer: nn.Module, norm: nn.Module,
                res_norm: Optional[nn.Module], gamma: Optional[torch.Tensor]) -> torch.Tensor:
        if self.post_norm:
            y = norm(layer(x))
        else:
            y = layer(norm(x))
            if res_norm is not None and gamma is None:
                y = res_norm(y)
        return x + self.drop_path(y if gamma is None else gamma * y)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        res1 = self.res_post_norm1 if self.res_post_norm else None
        res2 = self.res_post_norm2 if self.res_post_norm else None
        g1 = self.gamma1 if self.layer_scale else None
        g2 = self.gamma2 if self.layer_scale else None
        x = self._branch(x, self.dcn, self.norm1, res1, g1)
        return self._branch(x, self.mlp, self.norm2, res2, g2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class InternImageBlock(nn.Module):
    """One stage (upstream's ``InternImageBlock``): ``blocks``, the ``post_norms`` after the
    blocks listed in ``post_norm_block_ids`` (InternImage-H's level 2), the stage ``norm``
    (absent with ``post_norm`` unless ``center_feature_scale``) and, when built, the
    ``downsample`` feeding the next stage. ``forward`` returns ``(next input, stage output)``."""

    def __init__(self, channels: int, depth: int, group: int, downsample: bool,
                 drop_path: Sequence[float], post_norm_block_ids: Optional[List[int]],
                 center_feature_scale: bool, post_norm: bool, norm: str, **layer_kwargs):
        super().__init__()
        self.blocks = nn.ModuleList(InternImageLayer(
            channels, group, drop_path=drop_path[i], post_norm=post_norm, norm=norm,
            center_feature_scale=center_feature_scale, **layer_kwargs) for i in range(depth))
        self.has_norm = not post_norm or center_feature_scale
        if self.has_norm:
            self.norm = _ln(channels)
        self.post_norm_block_ids = list(post_norm_block_ids or [])
        if self.post_norm_block_ids:
            self.post_norms = nn.ModuleList(_ln(channels) for _ in self.post_norm_block_ids)
        self.downsample = DownsampleLayer(channels, norm) if downsample else None
        # the checkpoint of a deeper model has a downsampling here, feeding a stage not built
        self.checkpoint_not_built = () if downsample else ('downsample', )

    def forward(self, x: torch.Tensor):
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.post_norm_block_ids:
                x = self.post_norms[self.post_norm_block_ids.index(i)](x)
        if self.has_norm:
            x = self.norm(x)
        return (x if self.downsample is None else self.downsample(x)), x


__all__ = ['StemLayer', 'DownsampleLayer', 'MLPLayer', 'InternImageLayer', 'InternImageBlock']
