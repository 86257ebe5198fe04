"""DetectoRS's convolutions (https://arxiv.org/abs/2006.02334): adaptive weight standardisation
(``ConvAWS2d``) and Switchable Atrous Convolution (``SAConv2d``), in plain PyTorch.

Parameter and buffer names are mmcv 2.1's (``mmcv.cnn.ConvAWS2d``, ``mmcv.ops.saconv.SAConv2d``):
``weight``, ``weight_diff``, ``weight_gamma``, ``weight_beta``, ``switch.*``, ``pre_context.*``,
``post_context.*`` and with ``use_deform=True`` ``offset_s.*``/``offset_l.*``, so mmdet's
DetectoRS checkpoints load unchanged. ``use_deform=False`` needs nothing but PyTorch (mmcv-lite
cannot import ``mmcv.ops.saconv``); ``use_deform=True`` calls mmcv's compiled deformable
convolution and, without the full mmcv, is refused at construction with the install hint.

The AWS statistics ``weight_gamma``/``weight_beta`` are buffers: a checkpoint without them (an
ImageNet ResNet) gets them computed from its weights at load time, as mmcv does, so the
standardised weight is the loaded weight itself.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.validation import check_bool
from .fuse import reparametrises_weight  # noqa: F401 - used with these convs
from .resnet_blocks import FULL_MMCV_HINT

SAC_TYPES = ('SAC', )
_AWS_STATS = ('weight_gamma', 'weight_beta')


def _standardise(weight: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    flat = weight.view(weight.size(0), -1)
    mean = flat.mean(dim=1).view(-1, 1, 1, 1)
    std = torch.sqrt(flat.var(dim=1) + 1e-5).view(-1, 1, 1, 1)
    return gamma * ((weight - mean) / std) + beta


class ConvAWS2d(nn.Conv2d):
    """A conv whose weight is standardised per output channel, then scaled by ``weight_gamma``
    and shifted by ``weight_beta`` (buffers; mmcv's ``ConvAWS2d``, same names and numbers)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer('weight_gamma', torch.ones(self.out_channels, 1, 1, 1))
        self.register_buffer('weight_beta', torch.zeros(self.out_channels, 1, 1, 1))

    def _get_weight(self, weight: torch.Tensor) -> torch.Tensor:
        return _standardise(weight, self.weight_gamma, self.weight_beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self._get_weight(self.weight), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Load; when the checkpoint has no AWS statistics, set them to the loaded weight's
        per-channel mean and std (mmcv's rule), so the standardised weight is that weight."""
        local_missing = []
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, local_missing,
                                      unexpected_keys, error_msgs)
        stats_missing = [k for k in local_missing if k[len(prefix):] in _AWS_STATS]
        if stats_missing and prefix + 'weight' in state_dict:
            with torch.no_grad():
                flat = self.weight.view(self.weight.size(0), -1)
                self.weight_beta.copy_(flat.mean(dim=1).view(-1, 1, 1, 1))
                self.weight_gamma.copy_(torch.sqrt(flat.var(dim=1) + 1e-5).view(-1, 1, 1, 1))
            local_missing = [k for k in local_missing if k not in stats_missing]
        missing_keys.extend(local_missing)


def _deform_conv2d():
    try:
        from mmcv.ops import deform_conv2d
    except ImportError as err:
        raise ImportError(f"sac=dict(type='SAC', use_deform=True): {FULL_MMCV_HINT} ({err}); "
                          f"use_deform=False needs only PyTorch") from None
    return deform_conv2d


class SAConv2d(ConvAWS2d):
    """Switchable Atrous Convolution: one AWS 3x3 weight applied at ``dilation`` and (plus
    ``weight_diff``) at ``3 * dilation``, mixed per pixel by a learned switch, with global
    context added before and after (mmcv's ``SAConv2d``, registered there as ``'SAC'``).

    As in mmcv, ``bias=True`` creates a ``bias`` parameter that the forward does not use.
    ``use_deform=True`` makes both branches deformable (offsets from ``offset_s``/``offset_l``),
    through mmcv's compiled ``deform_conv2d``. Inputs need sides of at least 3 (the switch
    reflect-pads by 2).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, use_deform: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self.use_deform = check_bool('use_deform', use_deform)
        self._deform = _deform_conv2d() if use_deform else None
        self.switch = nn.Conv2d(self.in_channels, 1, kernel_size=1, stride=stride, bias=True)
        self.weight_diff = nn.Parameter(torch.zeros_like(self.weight))
        self.pre_context = nn.Conv2d(self.in_channels, self.in_channels, 1, bias=True)
        self.post_context = nn.Conv2d(self.out_channels, self.out_channels, 1, bias=True)
        if use_deform:
            self.offset_s = nn.Conv2d(self.in_channels, 18, 3, padding=1, stride=stride)
            self.offset_l = nn.Conv2d(self.in_channels, 18, 3, padding=1, stride=stride)
        self.reset_sac_parameters()

    def reset_sac_parameters(self) -> None:
        """mmcv's init: the switch picks the small-dilation branch (bias 1), no context, no
        offsets, equal weights in both branches."""
        with torch.no_grad():
            nn.init.zeros_(self.switch.weight)
            nn.init.ones_(self.switch.bias)
            self.weight_diff.zero_()
            for conv in (self.pre_context, self.post_context) + (
                    (self.offset_s, self.offset_l) if self.use_deform else ()):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def _branch(self, x: torch.Tensor, weight: torch.Tensor, offset_conv: Optional[nn.Module],
                context: torch.Tensor, scale: int) -> torch.Tensor:
        padding = tuple(scale * p for p in self.padding)
        dilation = tuple(scale * d for d in self.dilation)
        if offset_conv is None:
            return F.conv2d(x, weight, None, self.stride, padding, dilation, self.groups)
        return self._deform(x, offset_conv(context), weight, self.stride, padding, dilation,
                            self.groups, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 3:
            raise ValueError(f'SAConv2d reflect-pads its input by 2 for the switch: sides must '
                             f'be at least 3, got {tuple(x.shape[-2:])} (use a larger image)')
        x = x + self.pre_context(F.adaptive_avg_pool2d(x, 1))
        context = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode='reflect'), kernel_size=5, stride=1)
        switch = self.switch(context)
        weight = self._get_weight(self.weight)
        out_s = self._branch(x, weight, self._modules.get('offset_s'), context, 1)
        out_l = self._branch(x, weight + self.weight_diff, self._modules.get('offset_l'),
                             context, 3)
        out = switch * out_s + (1 - switch) * out_l
        return out + self.post_context(F.adaptive_avg_pool2d(out, 1))

    def extra_repr(self) -> str:
        return super().extra_repr() + f', use_deform={self.use_deform}'


def check_sac(sac: Optional[dict]) -> Optional[dict]:
    """mmdet's ``sac`` dict (``dict(type='SAC', use_deform=...)``), validated; None stays None."""
    if sac is None:
        return None
    if not isinstance(sac, dict) or sac.get('type') not in SAC_TYPES:
        raise ValueError(f"sac must be None or dict(type='SAC', use_deform=False|True) (mmcv's "
                         f"Switchable Atrous Convolution), got {sac!r}")
    unknown = sorted(set(sac) - {'type', 'use_deform'})
    if unknown:
        raise KeyError(f'sac={sac!r}: unknown keys {unknown}; allowed: type, use_deform')
    check_bool('sac use_deform', sac.get('use_deform', False))
    return dict(sac)


def build_sac_conv(sac: dict, in_channels: int, out_channels: int, **kwargs) -> SAConv2d:
    """The ``SAConv2d`` a checked ``sac`` dict describes."""
    return SAConv2d(in_channels, out_channels, use_deform=sac.get('use_deform', False), **kwargs)


__all__ = ['ConvAWS2d', 'SAConv2d', 'check_sac', 'build_sac_conv', 'reparametrises_weight',
           'SAC_TYPES']
