"""Transformer MLPs shared by the ViT and Swin families.

Parameter names follow mmcv's ``FFN`` (``layers.0.0`` the first linear, ``layers.1`` the second),
which mmpretrain's, mmdet's and mmseg's ViT/Swin checkpoints hold, and DINOv2's fused SwiGLU
(``w12``, ``w3``). A layer scale after the MLP is ``gamma2.weight``.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from .mmcv_bricks import build_activation_layer
from torch import nn


class LayerScale(nn.Module):
    """Per-channel learnable scale of a residual branch (CaiT); parameter ``weight``."""

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.init_value = float(init_value)
        self.weight = nn.Parameter(torch.full((dim,), self.init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the activation of OpenAI CLIP."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def build_act(act_cfg: Optional[dict]) -> nn.Module:
    """mmcv's ``build_activation_layer``, plus ``QuickGELU``; ``None`` means GELU."""
    if act_cfg is None:
        return nn.GELU()
    if not isinstance(act_cfg, dict) or 'type' not in act_cfg:
        raise TypeError(f'act_cfg must be a dict with a "type" key, got {act_cfg!r}')
    if str(act_cfg.get('type', '')).split('.')[-1] == 'QuickGELU':
        return QuickGELU()
    return build_activation_layer(dict(act_cfg))


def _dropout(rate: float) -> nn.Module:
    return nn.Dropout(rate) if rate > 0 else nn.Identity()


class FFN(nn.Module):
    """``Linear -> act -> dropout -> Linear -> dropout`` on ``(..., embed_dims)``.

    Args:
        embed_dims: input and output channels.
        feedforward_channels: hidden channels.
        act_cfg: activation (``None``: GELU).
        drop_rate: dropout after the activation and after the second linear (mmcv's
            ``ffn_drop``).
        layer_scale_init_value: > 0 scales the output by a learned ``gamma2``.
    """

    def __init__(self, embed_dims: int, feedforward_channels: int,
                 act_cfg: Optional[dict] = None, drop_rate: float = 0.,
                 layer_scale_init_value: float = 0.):
        super().__init__()
        # mmcv's FFN attributes (mmpretrain's tests and configs read them)
        self.embed_dims, self.feedforward_channels = embed_dims, feedforward_channels
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), build_act(act_cfg),
                          _dropout(drop_rate)),
            nn.Linear(feedforward_channels, embed_dims),
            _dropout(drop_rate))
        self.gamma2 = (LayerScale(embed_dims, layer_scale_init_value)
                       if layer_scale_init_value > 0 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        return x if self.gamma2 is None else self.gamma2(x)


class SwiGLUFFN(nn.Module):
    """SwiGLU MLP (``w12`` fused gate/value, ``w3`` output), ``silu(gate) * value``.

    ``fused=True`` (DINOv2, mmpretrain's ``SwiGLUFFNFused``): the hidden width is
    ``feedforward_channels * 2 / 3`` rounded up to a multiple of 8. ``fused=False`` (EVA-02,
    mmpretrain's ``SwiGLUFFN``): the hidden width is ``feedforward_channels``, and ``norm_cfg``
    adds a norm on the hidden features (EVA-02's sub-LN, parameter ``norm``)."""

    def __init__(self, embed_dims: int, feedforward_channels: int,
                 layer_scale_init_value: float = 0., drop_rate: float = 0.,
                 fused: bool = True, norm_cfg: Optional[dict] = None):
        super().__init__()
        hidden = (int(feedforward_channels * 2 / 3) + 7) // 8 * 8 if fused else \
            feedforward_channels
        self.embed_dims, self.feedforward_channels = embed_dims, hidden
        self.w12 = nn.Linear(embed_dims, 2 * hidden)
        if norm_cfg is not None:
            from .mmcv_bricks import build_norm_layer
            self.norm = build_norm_layer(norm_cfg, hidden)[1]
        else:
            self.norm = None
        self.w3 = nn.Linear(hidden, embed_dims)
        self.drop = _dropout(drop_rate)
        self.gamma2 = (LayerScale(embed_dims, layer_scale_init_value)
                       if layer_scale_init_value > 0 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        x = F.silu(x1) * x2
        if self.norm is not None:
            x = self.norm(x)
        x = self.drop(self.w3(x))
        return x if self.gamma2 is None else self.gamma2(x)
