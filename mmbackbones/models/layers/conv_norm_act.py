"""conv -> norm -> activation, with mmcv ``ConvModule``'s parameter names.

mmpretrain builds many backbones (CSPNet, DarkNet, ...) from ``mmcv.cnn.ConvModule``; its
checkpoints hold ``<name>.conv.weight`` and ``<name>.bn.*`` (the norm layer's abbreviation:
``bn``, ``gn``, ``ln``, ...). This module keeps those names, so such checkpoints load unchanged,
with a forward that is a plain call chain (no per-call ``order`` loop). An in-place SiLU or
Hardswish (mmcv's ``inplace=True`` default) becomes :class:`SiLU`/:class:`Hardswish`: in place
without autograd, out of place under it, where the in-place op costs a copy of its input.
"""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from .mmcv_bricks import build_activation_layer, build_conv_layer, build_norm_layer
from torch import nn

# Activations without an ``inplace`` argument (the same list mmcv's ConvModule uses).
_NO_INPLACE = ('Tanh', 'PReLU', 'Sigmoid', 'HSigmoid', 'Swish', 'GELU')


class SiLU(nn.SiLU):
    """``nn.SiLU`` that overwrites its input when no gradient is recorded (one allocation less
    per call) and stays out of place under autograd (no input copy kept for the backward);
    ``inplace=True`` always overwrites. Built only where its input is a fresh conv/norm
    output (:class:`ConvNormAct`, the mobile blocks). (Under autograd an in-place SiLU makes
    autograd keep a copy of its input; the out-of-place op does not.)"""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the test inline (no helper call): it runs once per conv of every block
        return F.silu(x, inplace=self.inplace or not x.requires_grad
                      or not torch.is_grad_enabled())


class Hardswish(nn.Hardswish):
    """``nn.Hardswish`` in place when no gradient is recorded, out of place otherwise (as
    :class:`SiLU`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x, inplace=self.inplace or not x.requires_grad
                           or not torch.is_grad_enabled())


# an in-place activation ConvNormAct builds -> the class that is in place only without autograd
_GRAD_AWARE = {nn.SiLU: SiLU, nn.Hardswish: Hardswish}


class ConvNormAct(nn.Module):
    """``conv`` (any ``conv_cfg``), then the norm of ``norm_cfg``, then ``act_cfg``'s activation.

    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, H', W')`` with
    ``H' = (H + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1``. ``padding``
    defaults to ``dilation * (kernel_size - 1) // 2`` ("same" for stride 1). ``bias='auto'``
    gives the conv a bias only when there is no norm layer. ``norm_cfg=None`` or ``act_cfg=None``
    leaves that step out.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: Optional[int] = None, dilation: int = 1, groups: int = 1,
                 bias: Union[bool, str] = 'auto', conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'), inplace: bool = True):
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        if bias == 'auto':
            bias = norm_cfg is None
        self.conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size,
                                     stride=stride, padding=padding, dilation=dilation,
                                     groups=groups, bias=bias)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm_name = None
        if norm_cfg is not None:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            self.add_module(self.norm_name, norm)
        self.activate = None
        if act_cfg is not None:
            act_cfg = dict(act_cfg)
            if act_cfg.get('type') not in _NO_INPLACE:
                act_cfg.setdefault('inplace', inplace)
            self.activate = build_activation_layer(act_cfg)
            if type(self.activate) in _GRAD_AWARE and self.activate.inplace:
                # its input is this module's own conv/norm output: free to overwrite
                self.activate = _GRAD_AWARE[type(self.activate)]()

    @property
    def norm(self) -> Optional[nn.Module]:
        return getattr(self, self.norm_name) if self.norm_name else None

    def __prepare_scriptable__(self):
        """``torch.jit.script`` compiles ``Sequential(conv, norm, act)`` over the same modules."""
        from .scripting import plain_conv_norm_act
        return plain_conv_norm_act(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_name is not None:
            x = self._modules[self.norm_name](x)
        if self.activate is not None:
            x = self.activate(x)
        return x
