"""Building blocks of STDC (https://arxiv.org/abs/2104.13188) with mmseg 1.2.2's parameter names.

* :class:`STDCModule`: the "short-term dense concatenate" block. ``num_convs`` convs in a chain
  (``layers.0`` a 1x1 conv to ``out // 2``, then 3x3 convs halving the width, the last one
  keeping it), their outputs concatenated to ``out_channels``. A stride-2 block downsamples
  after ``layers.0`` with a depthwise 3x3 conv + norm (``downsample``). ``fusion_type='cat'``:
  the first output is average-pooled (``skip``) before the concatenation; ``'add'``: the
  concatenation is added to the input (``skip``: depthwise 3x3 stride 2 + 1x1 projection when
  the block downsamples), and ``layers.0`` holds ``Sequential(conv_0, downsample)`` (the same
  ``downsample`` module under two names, as in mmseg, so its keys appear twice).
* :class:`AttentionRefinementModule` (BiSeNet's ARM): 3x3 conv, then a channel gate from global
  pooling (``atten_conv_layer``: pool, 1x1 conv + norm, sigmoid) that multiplies it.
* :class:`FeatureFusionModule`: STDC's FFM (two 1x1 convs in its gate, unlike BiSeNetV1's):
  ``conv0`` over the concatenated inputs, ``x * gate + x``.

Every conv is a :class:`~.conv_norm_act.ConvNormAct` (mmcv ``ConvModule``'s ``conv``/``bn``
names).
"""
from typing import List, Optional

import torch
from torch import nn

from .conv_norm_act import ConvNormAct

_RELU = dict(type='ReLU')


class STDCModule(nn.Module):
    """One STDC block: ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W /
    stride)`` (module docstring). ``out_channels`` must be a multiple of
    ``2 ** (num_convs - 1)`` (the caller checks)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
                 num_convs: int = 4, fusion_type: str = 'add'):
        super().__init__()
        self.stride = stride
        self.with_downsample = stride == 2
        self.fusion_type = fusion_type
        self.layers = nn.ModuleList()
        # mmseg builds the first 1x1 conv with ConvModule's default activation (ReLU)
        conv_0 = ConvNormAct(in_channels, out_channels // 2, 1, norm_cfg=norm_cfg, act_cfg=_RELU)
        if self.with_downsample:
            half = out_channels // 2
            self.downsample = ConvNormAct(half, half, 3, stride=2, padding=1, groups=half,
                                          norm_cfg=norm_cfg, act_cfg=None)
            if fusion_type == 'add':
                self.layers.append(nn.Sequential(conv_0, self.downsample))
                self.skip = nn.Sequential(
                    ConvNormAct(in_channels, in_channels, 3, stride=2, padding=1,
                                groups=in_channels, norm_cfg=norm_cfg, act_cfg=None),
                    ConvNormAct(in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None))
            else:
                self.layers.append(conv_0)
                self.skip = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.layers.append(conv_0)
        for i in range(1, num_convs):
            # each conv halves the width, the last one keeps it: the widths sum to out_channels
            factor = 2 ** (i + 1) if i != num_convs - 1 else 2 ** i
            self.layers.append(ConvNormAct(out_channels // 2 ** i, out_channels // factor, 3,
                                           padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (hasattr: skip/downsample exist with with_downsample; TorchScript resolves it)
        outs: List[torch.Tensor] = []
        out = x
        if self.fusion_type == 'add':
            for layer in self.layers:  # layers.0 downsamples in a stride-2 block
                out = layer(out)
                outs.append(out)
            skip = x
            if hasattr(self, 'skip'):
                skip = self.skip(x)
            return torch.cat(outs, dim=1) + skip
        for i, layer in enumerate(self.layers):
            out = layer(out)
            if i == 0 and hasattr(self, 'downsample'):
                outs.append(self.skip(out))
                out = self.downsample(out)
            else:
                outs.append(out)
        return torch.cat(outs, dim=1)


class AttentionRefinementModule(nn.Module):
    """BiSeNet's ARM as mmseg builds it: ``(N, in_channels, H, W)`` -> ``(N, out_channel, H,
    W)``, a 3x3 conv gated per channel by its pooled, projected, sigmoid-squashed mean."""

    def __init__(self, in_channels: int, out_channel: int, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU')):
        super().__init__()
        self.conv_layer = ConvNormAct(in_channels, out_channel, 3, padding=1, conv_cfg=conv_cfg,
                                      norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.atten_conv_layer = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            ConvNormAct(out_channel, out_channel, 1, bias=False, conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg, act_cfg=None),
            nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_layer(x)
        return x * self.atten_conv_layer(x)


class FeatureFusionModule(nn.Module):
    """STDC's FFM: ``(spatial, context)`` concatenated (``in_channels`` together) ->
    ``conv0`` (1x1 to ``out_channels``) -> ``x * gate(x) + x``, the gate a global pool, a 1x1
    conv to ``out_channels // scale_factor`` with ``act_cfg``, a 1x1 conv back and a sigmoid
    (no norms, no biases)."""

    def __init__(self, in_channels: int, out_channels: int, scale_factor: int = 4,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU')):
        super().__init__()
        channels = out_channels // scale_factor
        self.conv0 = ConvNormAct(in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            ConvNormAct(out_channels, channels, 1, bias=False, norm_cfg=None, act_cfg=act_cfg),
            ConvNormAct(channels, out_channels, 1, bias=False, norm_cfg=None, act_cfg=None),
            nn.Sigmoid())

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.conv0(torch.cat([spatial, context], dim=1))
        return x * self.attention(x) + x


def init_conv_norm_act_(module: nn.Module) -> None:
    """mmcv ``ConvModule.init_weights`` on every :class:`ConvNormAct` under ``module``: Kaiming
    normal (fan-out; ``leaky_relu`` with its slope after a LeakyReLU, else ``relu``) for the
    conv, zero bias; weight 1 and bias 0 for the norm."""
    with torch.no_grad():
        for m in module.modules():
            if not isinstance(m, ConvNormAct):
                continue
            slope, nonlinearity = 0.0, 'relu'
            if isinstance(m.activate, nn.LeakyReLU):
                slope, nonlinearity = m.activate.negative_slope, 'leaky_relu'
            if isinstance(m.conv, nn.Conv2d):
                nn.init.kaiming_normal_(m.conv.weight, a=slope, mode='fan_out',
                                        nonlinearity=nonlinearity)
                if m.conv.bias is not None:
                    nn.init.zeros_(m.conv.bias)
            norm = m.norm
            if norm is not None and getattr(norm, 'weight', None) is not None:
                nn.init.ones_(norm.weight)
            if norm is not None and getattr(norm, 'bias', None) is not None:
                nn.init.zeros_(norm.bias)
