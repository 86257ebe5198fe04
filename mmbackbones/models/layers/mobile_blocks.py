"""Blocks of the mobile families (MobileNetV2/V3, EfficientNet/V2), with mmpretrain's names.

* :func:`make_divisible`: mmpretrain's channel rounding (to a multiple of ``divisor``, never
  more than 10% down).
* :class:`Conv2dSame`: TensorFlow's ``'same'`` padding computed per input (mmcv's
  ``Conv2dAdaptivePadding``, timm's ``Conv2dSame``): for stride 2 the extra row/column of
  padding goes to the bottom/right. Also in traced graphs (ONNX with dynamic sides). At
  stride 1 with an odd (dilated) kernel it is the conv's own symmetric padding, no pad copy.
* :class:`SqueezeExcite`: ``conv1`` (reduce, bias) -> act -> ``conv2`` (expand, bias) -> gate,
  mmpretrain's ``SELayer`` (``se.conv1.conv.weight``, ...).
* :class:`InvertedResidual`: ``expand_conv`` (1x1, left out when the mid width equals the
  input's) -> ``depthwise_conv`` -> ``se`` -> ``linear_conv`` (1x1, no activation), residual when
  shapes allow: mmpretrain's/mmdet's/mmseg's (V3) ``InvertedResidual`` and timm's
  ``InvertedResidual`` / ``DepthwiseSeparableConv``.
* :class:`SequentialInvertedResidual`: the same computation with MobileNetV2's names
  (``conv.0``/``conv.1``/``conv.2``) and mmseg's dilation.
* :class:`EdgeResidual`: ``conv1`` (kxk, expands) -> ``se`` -> ``conv2`` (1x1): EfficientNet-
  EdgeTPU's block and EfficientNetV2's ``FusedMBConv``.
* :class:`ConvNormActSkip`: a :class:`ConvNormAct` with a residual (EfficientNetV2's first
  stage, mmpretrain's ``EnhancedConvModule``).

The activations are built by name (:func:`build_mobile_act`): ``ReLU``, ``ReLU6``, ``HSwish``,
``Swish`` (``x * sigmoid(x)``, as ``nn.SiLU``), ``HSigmoid`` (``clamp((x + 3) / 6, 0, 1)``),
``Sigmoid``; any other ``act_cfg`` goes to mmcv's builder. ``Swish``/``SiLU`` and ``HSwish``
overwrite their input (always a fresh conv/norm output here) when no gradient is recorded and
stay out of place under autograd, where an in-place one would make autograd copy its input;
``HSigmoid`` with its default numbers is ``F.hardsigmoid`` (one kernel, the same values).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from .conv_norm_act import ConvNormAct, Hardswish, SiLU
from .drop import DropPath
from .pos_embed import is_tracing

SAME_PADDING = 'Conv2dAdaptivePadding'  # mmcv's name of the TF-'same' conv, as configs write it


def make_divisible(value, divisor: int, min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``, default
    ``divisor``), one ``divisor`` more when rounding lost more than ``1 - min_ratio``."""
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


def check_built_stages(built_stages, out_indices, num_stages: int) -> int:
    """``built_stages`` (None: up to the last output) checked against ``out_indices``."""
    least = max(out_indices) + 1
    if built_stages is None:
        return least
    if isinstance(built_stages, bool) or not isinstance(built_stages, int) or \
            not least <= built_stages <= num_stages:
        raise ValueError(f'built_stages must be an int in {least}..{num_stages} (at least up to '
                         f'the last of out_indices={tuple(out_indices)}), got {built_stages!r}')
    return built_stages


def drop_path_rates(rate: float, count: int) -> list:
    """``count`` stochastic-depth rates rising linearly from 0 to ``rate`` (``torch.linspace``'s
    values, computed without a tensor so that meta-device builds work)."""
    if count <= 1:
        return [0.0] * count
    return [rate * i / (count - 1) for i in range(count)]


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``'same'`` padding: the input is zero-padded so that the
    output side is ``ceil(side / stride)``, the odd pixel at the bottom/right. Same parameters
    as ``nn.Conv2d`` (its own ``padding`` is 0)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups,
                         bias)
        # at stride 1 the padding is (k - 1) * d whatever the input: when that is even on both
        # sides it is the conv's own symmetric padding (no F.pad copy per call), as timm does
        total = [(k - 1) * d for k, d in zip(self.kernel_size, self.dilation)]
        self._static_padding = tuple(t // 2 for t in total) if self.stride == (1, 1) and all(
            t % 2 == 0 for t in total) else None

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: ``layers.scripting.ScriptableConv2dSame``, this
        forward over the same weight and bias."""
        from .scripting import ScriptableConv2dSame, keep_source
        return keep_source(ScriptableConv2dSame(self), self)

    def _pad(self, side, kernel: int, stride: int, dilation: int):
        if isinstance(side, torch.Tensor):  # traced: keep the arithmetic in the graph
            out = torch.div(side + stride - 1, stride, rounding_mode='floor')
            return torch.clamp((out - 1) * stride + (kernel - 1) * dilation + 1 - side, min=0)
        return max((math.ceil(side / stride) - 1) * stride + (kernel - 1) * dilation + 1 - side,
                   0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._static_padding is not None:
            return F.conv2d(x, self.weight, self.bias, 1, self._static_padding, self.dilation,
                            self.groups)
        h, w = x.shape[-2:]
        if is_tracing():
            h, w = torch.as_tensor(h), torch.as_tensor(w)
        pad_h = self._pad(h, self.kernel_size[0], self.stride[0], self.dilation[0])
        pad_w = self._pad(w, self.kernel_size[1], self.stride[1], self.dilation[1])
        if isinstance(pad_h, torch.Tensor) or pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def is_same_padding(conv_cfg: Optional[dict]) -> bool:
    return isinstance(conv_cfg, dict) and conv_cfg.get('type') in (SAME_PADDING, 'Conv2dSame')


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                  dilation: int = 1, groups: int = 1, padding: Optional[int] = None,
                  conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                  act_cfg: Optional[dict] = None) -> ConvNormAct:
    """A :class:`ConvNormAct` (``conv``/``bn`` names); ``conv_cfg`` of type
    ``'Conv2dAdaptivePadding'`` gives a :class:`Conv2dSame`, ``padding`` defaults to
    ``dilation * (kernel_size - 1) // 2``."""
    same = is_same_padding(conv_cfg)
    module = ConvNormAct(in_channels, out_channels, kernel_size, stride=stride,
                         padding=0 if same else padding, dilation=dilation, groups=groups,
                         conv_cfg=None if same else conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
    if same:
        plain = module.conv
        module.conv = Conv2dSame(in_channels, out_channels, kernel_size, stride=stride,
                                 dilation=dilation, groups=groups, bias=plain.bias is not None)
    if act_cfg is not None:
        module.activate = build_mobile_act(act_cfg)
    return module


class HSigmoid(nn.Module):
    """``clamp((x + bias) / divisor, min_value, max_value)``: mmcv's ``HSigmoid`` (defaults
    ``hardsigmoid``'s), without its construction warning."""

    def __init__(self, bias: float = 3.0, divisor: float = 6.0, min_value: float = 0.0,
                 max_value: float = 1.0):
        super().__init__()
        if divisor == 0:
            raise ValueError('HSigmoid: divisor must not be 0')
        self.bias, self.divisor = bias, divisor
        self.min_value, self.max_value = min_value, max_value

        # the default numbers are ``F.hardsigmoid``'s: one kernel instead of add, div and
        # clamp, bit-identical in float32/float64 (min(max(x + 3, 0), 6) / 6)
        self._is_hardsigmoid = (bias, divisor, min_value, max_value) == (3, 6, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._is_hardsigmoid and (x.dtype == torch.float32 or x.dtype == torch.float64):
            return F.hardsigmoid(x)
        return ((x + self.bias) / self.divisor).clamp(self.min_value, self.max_value)



_ACTS = {'ReLU': lambda: nn.ReLU(inplace=True), 'ReLU6': lambda: nn.ReLU6(inplace=True),
         'HSwish': Hardswish, 'Swish': SiLU, 'SiLU': SiLU, 'Sigmoid': nn.Sigmoid}


def build_mobile_act(act_cfg: dict) -> nn.Module:
    """An activation from ``act_cfg`` (see the module docstring)."""
    cfg = dict(act_cfg)
    kind = cfg.pop('type', None)
    if kind == 'HSigmoid':
        return HSigmoid(**cfg)
    if kind in _ACTS and not cfg or kind in _ACTS and set(cfg) == {'inplace'}:
        return _ACTS[kind]()
    from .mmcv_bricks import build_activation_layer
    return build_activation_layer(dict(act_cfg))


class SqueezeExcite(nn.Module):
    """mmpretrain's ``SELayer``: global average pool, ``conv1`` (``channels`` ->
    ``squeeze_channels``, bias) + act, ``conv2`` (back to ``channels``, bias) + gate; the input
    times the gate. ``squeeze_channels`` defaults to ``make_divisible(channels // ratio,
    divisor)``."""

    def __init__(self, channels: int, squeeze_channels: Optional[int] = None, ratio=16,
                 divisor: int = 8, act_cfg=(dict(type='ReLU'), dict(type='Sigmoid')),
                 conv_cfg: Optional[dict] = None):
        super().__init__()
        if isinstance(act_cfg, dict):
            act_cfg = (act_cfg, act_cfg)
        if squeeze_channels is None:
            squeeze_channels = make_divisible(channels // ratio, divisor)
        squeeze_channels = int(squeeze_channels)
        self.conv1 = conv_norm_act(channels, squeeze_channels, 1, conv_cfg=conv_cfg,
                                   act_cfg=act_cfg[0])
        self.conv2 = conv_norm_act(squeeze_channels, channels, 1, conv_cfg=conv_cfg,
                                   act_cfg=act_cfg[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(x.mean((2, 3), keepdim=True)))


class _CheckpointedForward(nn.Module):
    """``forward``: ``_inner_forward``, checkpointed with ``with_cp`` when the input needs
    gradients (the checkpoint path is outside TorchScript: a scripted block runs it plain, the
    same numbers)."""

    @torch.jit.unused
    def _checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        return cp.checkpoint(self._inner_forward, x, use_reentrant=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad and not torch.jit.is_scripting():
            return self._checkpointed(x)
        return self._inner_forward(x)


class InvertedResidual(_CheckpointedForward):
    """MobileNetV2/V3's and EfficientNet's block (see the module docstring).

    ``dw_conv_cfg`` is the depthwise conv's (default ``'conv_cfg'``: the same as the others):
    mmseg's MobileNetV3 gives its stride-2 depthwise convs ``'same'`` padding whatever
    ``conv_cfg`` is.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int,
                 kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 se_cfg: Optional[dict] = None, with_expand_conv: Optional[bool] = None,
                 conv_cfg: Optional[dict] = None, dw_conv_cfg: Optional[dict] = 'conv_cfg',
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU'),
                 drop_path_rate: float = 0.0, with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.with_res_shortcut = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        if with_expand_conv is None:
            with_expand_conv = mid_channels != in_channels
        self.with_expand_conv, self.with_se = with_expand_conv, se_cfg is not None
        if with_expand_conv:
            self.expand_conv = conv_norm_act(in_channels, mid_channels, 1, conv_cfg=conv_cfg,
                                             norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.depthwise_conv = conv_norm_act(
            mid_channels, mid_channels, kernel_size, stride=stride, dilation=dilation,
            groups=mid_channels,
            conv_cfg=conv_cfg if dw_conv_cfg == 'conv_cfg' else dw_conv_cfg,
            norm_cfg=norm_cfg, act_cfg=act_cfg)
        if se_cfg is not None:
            self.se = SqueezeExcite(**se_cfg)
        self.linear_conv = conv_norm_act(mid_channels, out_channels, 1, conv_cfg=conv_cfg,
                                         norm_cfg=norm_cfg)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if hasattr(self, 'expand_conv'):  # with_expand_conv (hasattr: resolved by TorchScript)
            out = self.expand_conv(x)
        out = self.depthwise_conv(out)
        if hasattr(self, 'se'):  # with_se
            out = self.se(out)
        out = self.linear_conv(out)
        return x + self.drop_path(out) if self.with_res_shortcut else out



class SequentialInvertedResidual(_CheckpointedForward):
    """MobileNetV2's block with mmpretrain's/mmseg's names: ``conv.0`` (1x1 expand, left out
    when ``expand_ratio == 1``), then the 3x3 depthwise conv (``dilation``: mmseg's) and the
    linear 1x1 conv; residual when ``stride == 1`` and the widths agree."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio,
                 dilation: int = 1, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU6'),
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.use_res_connect = stride == 1 and in_channels == out_channels
        hidden = int(round(in_channels * expand_ratio))
        layers = []
        if expand_ratio != 1:
            layers.append(conv_norm_act(in_channels, hidden, 1, conv_cfg=conv_cfg,
                                        norm_cfg=norm_cfg, act_cfg=act_cfg))
        layers += [conv_norm_act(hidden, hidden, 3, stride=stride, dilation=dilation,
                                 groups=hidden, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg),
                   conv_norm_act(hidden, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg)]
        self.conv = nn.Sequential(*layers)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)

    def __prepare_scriptable__(self):
        from .scripting import ScriptableResidual, keep_source
        return keep_source(ScriptableResidual(self.conv, self.use_res_connect), self)



class EdgeResidual(_CheckpointedForward):
    """``conv1`` (kxk, ``in -> mid``, act) -> ``se`` -> ``conv2`` (1x1, ``mid -> out``, no act),
    residual when ``with_residual`` and the shapes allow. The stride is ``conv1``'s
    (mmpretrain's) or, with ``stride_in_conv2=True`` (mmdet's), the 1x1 ``conv2``'s, which then
    also takes ``conv_cfg`` (mmpretrain's ``conv2`` is a plain conv)."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int,
                 kernel_size: int = 3, stride: int = 1, se_cfg: Optional[dict] = None,
                 with_residual: bool = True, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU'),
                 drop_path_rate: float = 0.0, with_cp: bool = False,
                 stride_in_conv2: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.with_se = se_cfg is not None
        self.with_residual = stride == 1 and in_channels == out_channels and with_residual
        self.conv1 = conv_norm_act(in_channels, mid_channels, kernel_size,
                                   stride=1 if stride_in_conv2 else stride,
                                   padding=kernel_size // 2, conv_cfg=conv_cfg,
                                   norm_cfg=norm_cfg, act_cfg=act_cfg)
        if se_cfg is not None:
            self.se = SqueezeExcite(**se_cfg)
        self.conv2 = conv_norm_act(mid_channels, out_channels, 1,
                                   stride=stride if stride_in_conv2 else 1,
                                   conv_cfg=conv_cfg if stride_in_conv2 else None,
                                   norm_cfg=norm_cfg)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if hasattr(self, 'se'):  # with_se (hasattr: resolved by TorchScript)
            out = self.se(out)
        out = self.conv2(out)
        return x + self.drop_path(out) if self.with_residual else out



class ConvNormActSkip(ConvNormAct):
    """A conv-norm-act with a residual (``has_skip``: stride 1, same widths) and stochastic
    depth on it: mmpretrain's ``EnhancedConvModule`` (keys ``conv.weight``, ``bn.*``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 has_skip: bool = False, drop_path_rate: float = 0.0,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU')):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         norm_cfg=norm_cfg, act_cfg=None)
        self.activate = build_mobile_act(act_cfg) if act_cfg is not None else None
        self.has_skip = has_skip and stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return self.drop_path(out) + x if self.has_skip else out


class LayerListStagesMixin:
    """The stage plumbing of EfficientNet and EfficientNetV2: ``self.layers`` (an
    ``nn.ModuleList`` of the built stages, the stem first) run in sequence, output ``i`` the
    map after ``layers[i]``; freezing groups ``[None, layers[0], ...]`` (mmpretrain's
    ``frozen_stages=k`` freezes ``layers[0..k-1]``); layer depth ``i`` for ``layers.{i}``."""

    def stem_and_stages(self):
        return [None] + list(self.layers)

    def _layer_list_depth(self, name):
        """``(i, num_stages + 1)`` for ``layers.{i}``; the last depth for anything else
        (``name`` without its prefix, ``None``: not ours)."""
        total = self.num_stages + 1
        parts = [] if name is None else name.split('.')
        if len(parts) > 1 and parts[0] == 'layers' and parts[1].isdigit():
            return int(parts[1]), total
        return total - 1, total

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the built layers in sequence
        (``layers.scripting.ScriptableStages``), a list of the same maps."""
        from .scripting import ScriptableStages
        return ScriptableStages(nn.Identity(), self.layers, self.out_indices)

    def forward(self, x: torch.Tensor):
        """``(N, C, H, W)`` -> one map per ``out_indices`` entry, in that order."""
        self.check_input(x)
        outs = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)


__all__ = ['LayerListStagesMixin', 'make_divisible', 'drop_path_rates', 'check_built_stages', 'Conv2dSame', 'conv_norm_act', 'HSigmoid', 'build_mobile_act',
           'SqueezeExcite', 'InvertedResidual', 'SequentialInvertedResidual', 'EdgeResidual',
           'ConvNormActSkip', 'SAME_PADDING', 'is_same_padding']
