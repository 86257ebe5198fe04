"""The blocks of the YOLO-lineage CSP backbones (mmdet 3.3's ``CSPDarknet`` of YOLOX/YOLOv5,
``CSPNeXt`` of RTMDet, ``Darknet`` of YOLOv3), with mmdet's parameter names.

Every conv is a :class:`~.conv_norm_act.ConvNormAct` (mmcv ``ConvModule``'s names: ``conv``,
``bn``); mmcv's ``DepthwiseSeparableConvModule`` is :class:`DepthwiseSeparableConvNormAct`
(``depthwise_conv``, ``pointwise_conv``). ``(N, C, H, W)`` in and out everywhere.

:class:`CSPStagesMixin` is the stage plumbing the two CSP backbones share (it imports no
backbone base class: each family file combines it with ``BaseBackbone``).
"""
import math
import re
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_choice,
                                 check_frozen_stages, check_positive_int, check_size_limit,
                                 normalize_out_indices)
from .conv_norm_act import ConvNormAct

YOLO_BN = dict(type='BN', momentum=0.03, eps=0.001)
# mmdet's default init of CSPDarknet and CSPNeXt (a copy is made per model)
YOLO_INIT_CFG = dict(type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')


class DepthwiseSeparableConvNormAct(nn.Module):
    """``depthwise_conv`` (``k x k``, one group per channel, ``stride``) then ``pointwise_conv``
    (1x1), each conv + norm + activation: mmcv's ``DepthwiseSeparableConvModule`` with its
    defaults (the same norm and activation for both)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: Optional[int] = None, conv_cfg=None, norm_cfg=YOLO_BN,
                 act_cfg=dict(type='Swish')):
        super().__init__()
        self.depthwise_conv = ConvNormAct(in_channels, in_channels, kernel_size, stride=stride,
                                          padding=padding, groups=in_channels,
                                          conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.pointwise_conv = ConvNormAct(in_channels, out_channels, 1, conv_cfg=conv_cfg,
                                          norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


def conv_or_dw(use_depthwise: bool):
    return DepthwiseSeparableConvNormAct if use_depthwise else ConvNormAct


class Focus(nn.Module):
    """YOLOX's stem: the four pixels of every 2x2 cell stacked as channels (top-left,
    bottom-left, top-right, bottom-right), then one conv. ``(N, C, H, W) -> (N, out, H/2, W/2)``;
    ``H`` and ``W`` must be even (mmdet fails there too, with a shape error)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, conv_cfg=None, norm_cfg=YOLO_BN, act_cfg=dict(type='Swish')):
        super().__init__()
        self.conv = ConvNormAct(in_channels * 4, out_channels, kernel_size, stride,
                                padding=(kernel_size - 1) // 2, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f'the Focus stem (YOLOX CSPDarknet) folds 2x2 cells into channels '
                             f'and needs even input sides, got {(x.shape[-2], x.shape[-1])}; pad the '
                             f'image to a multiple of 32')
        x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                       x[..., 1::2, 1::2]), dim=1)
        return self.conv(x)


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: ``conv1`` (1x1 to half the channels), the map and its stride-1
    max pools (``kernel_sizes``) concatenated, ``conv2`` (1x1 to ``out_channels``).

    Pools whose kernels are ``k, 2k-1, 3k-2, ...`` (the default 5, 9, 13) are computed as a
    chain of ``k`` pools (YOLOv5's SPPF): the same numbers, since a max over a window of
    ``2k-1`` is the max of ``k``-windows of ``k``-windows (padding counts as -inf in both).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_sizes: Sequence[int] = (5, 9, 13), conv_cfg=None, norm_cfg=YOLO_BN,
                 act_cfg=dict(type='Swish')):
        super().__init__()
        mid = in_channels // 2
        self.conv1 = ConvNormAct(in_channels, mid, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg)
        self.poolings = nn.ModuleList(
            nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.conv2 = ConvNormAct(mid * (len(kernel_sizes) + 1), out_channels, 1,
                                 conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        k = kernel_sizes[0] if kernel_sizes else 1
        self.chain = k % 2 == 1 and k > 1 and all(
            size == k + i * (k - 1) for i, size in enumerate(kernel_sizes))
        self.kernel_size = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        outs = [x]
        if self.chain:
            for _ in self.poolings:
                outs.append(F.max_pool2d(outs[-1], self.kernel_size, 1, self.kernel_size // 2))
        else:
            outs.extend(pool(x) for pool in self.poolings)
        return self.conv2(torch.cat(outs, dim=1))


class ChannelAttention(nn.Module):
    """RTMDet's channel attention: global average pool, 1x1 conv (with bias), hard sigmoid,
    times the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, 1, 0, bias=True)
        self.act = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPDarknetBottleneck(nn.Module):
    """1x1 conv to ``out * expansion``, 3x3 conv (depthwise separable with
    ``use_depthwise``) to ``out``, plus the input when ``add_identity`` and the channels match
    (mmdet's ``DarknetBottleneck`` of ``layers/csp_layer.py``)."""

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5,
                 add_identity: bool = True, use_depthwise: bool = False, conv_cfg=None,
                 norm_cfg=YOLO_BN, act_cfg=dict(type='Swish')):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvNormAct(in_channels, hidden, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg)
        self.conv2 = conv_or_dw(use_depthwise)(hidden, out_channels, 3, stride=1, padding=1,
                                               conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                               act_cfg=act_cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPNeXtBlock(nn.Module):
    """RTMDet's block: 3x3 conv (depthwise separable with ``use_depthwise``; mmdet builds it
    without ``conv_cfg``), then a depthwise separable ``kernel_size`` conv, plus the input."""

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5,
                 add_identity: bool = True, use_depthwise: bool = False, kernel_size: int = 5,
                 conv_cfg=None, norm_cfg=YOLO_BN, act_cfg=dict(type='SiLU')):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = conv_or_dw(use_depthwise)(in_channels, hidden, 3, stride=1, padding=1,
                                               norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = DepthwiseSeparableConvNormAct(hidden, out_channels, kernel_size, stride=1,
                                                   padding=kernel_size // 2, conv_cfg=conv_cfg,
                                                   norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross Stage Partial layer: ``main_conv`` (1x1) -> ``blocks``; ``short_conv`` (1x1);
    concatenated (main first), optional ``attention``, ``final_conv`` (1x1 to ``out``).
    ``with_cp`` checkpoints every block while training."""

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: float = 0.5,
                 num_blocks: int = 1, add_identity: bool = True, use_depthwise: bool = False,
                 use_cspnext_block: bool = False, channel_attention: bool = False,
                 conv_cfg=None, norm_cfg=YOLO_BN, act_cfg=dict(type='Swish'),
                 with_cp: bool = False):
        super().__init__()
        block = CSPNeXtBlock if use_cspnext_block else CSPDarknetBottleneck
        mid = int(out_channels * expand_ratio)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.main_conv = ConvNormAct(in_channels, mid, 1, **cfg)
        self.short_conv = ConvNormAct(in_channels, mid, 1, **cfg)
        self.final_conv = ConvNormAct(2 * mid, out_channels, 1, **cfg)
        self.blocks = nn.Sequential(*[
            block(mid, mid, 1.0, add_identity, use_depthwise, **cfg) for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid) if channel_attention else None
        self.with_cp = with_cp

    @torch.jit.unused
    def _checkpointed_blocks(self, x: torch.Tensor) -> torch.Tensor:
        # (a training-time memory trade: TorchScript compiles no checkpoint)
        for block in self.blocks:
            x = cp.checkpoint(block, x, use_reentrant=False) if x.requires_grad else block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.short_conv(x)
        x = self.main_conv(x)
        if self.with_cp and not torch.jit.is_scripting():
            x = self._checkpointed_blocks(x)
        else:
            x = self.blocks(x)
        x = torch.cat((x, short), dim=1)
        if self.attention is not None:
            x = self.attention(x)
        return self.final_conv(x)


def check_factor(name: str, value) -> float:
    """``deepen_factor``/``widen_factor``/``expand_ratio``: a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise (ValueError if isinstance(value, (int, float)) and not isinstance(value, bool)
               else TypeError)(f'{name} must be a number > 0, got {value!r}')
    return float(value)


def check_arch_rows(name: str, rows) -> List[tuple]:
    """mmdet's ``arch_ovewrite``: a non-empty list of ``[in_channels, out_channels,
    num_blocks, add_identity, use_spp]`` rows."""
    if not isinstance(rows, (list, tuple)) or not rows:
        raise TypeError(f'{name} must be a non-empty list of [in_channels, out_channels, '
                        f'num_blocks, add_identity, use_spp] rows, got {rows!r}')
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 5:
            raise ValueError(f'{name}[{i}] must be [in_channels, out_channels, num_blocks, '
                             f'add_identity, use_spp], got {row!r}')
        for what, value, limit in (('in_channels', row[0], MAX_WIDTH),
                                   ('out_channels', row[1], MAX_WIDTH),
                                   ('num_blocks', row[2], MAX_BLOCKS)):
            check_size_limit(f'{name}[{i}] {what}', value, limit)
        out.append(tuple(row))
    return out


def check_kernel_sizes(name: str, sizes) -> Tuple[int, ...]:
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise TypeError(f'{name} must be a non-empty list of odd ints, got {sizes!r}')
    for k in sizes:
        if check_positive_int(f'each of {name}', k) % 2 == 0:
            raise ValueError(f'{name} must hold odd kernel sizes (same-size pooling), got '
                             f'{sizes!r}')
    return tuple(sizes)


def scaled_arch(arch_setting: Sequence[Sequence], deepen_factor: float,
                widen_factor: float) -> List[tuple]:
    """mmdet's rows ``[in, out, num_blocks, add_identity, use_spp]`` scaled as mmdet scales
    them: ``int(c * widen_factor)`` channels, ``max(round(n * deepen_factor), 1)`` blocks."""
    return [(int(i * widen_factor), int(o * widen_factor), max(round(n * deepen_factor), 1),
             bool(identity), bool(spp)) for i, o, n, identity, spp in arch_setting]


def make_csp_stage(row: tuple, use_depthwise: bool, spp_kernel_sizes: Sequence[int],
                   layer_kwargs: dict, cfg: dict) -> nn.Sequential:
    """One stage: a stride-2 3x3 conv, :class:`SPPBottleneck` where ``use_spp``, a
    :class:`CSPLayer` (``layer_kwargs``: ``use_cspnext_block``, ``expand_ratio``,
    ``channel_attention``, ``with_cp``)."""
    in_ch, out_ch, num_blocks, add_identity, use_spp = row
    layers = [conv_or_dw(use_depthwise)(in_ch, out_ch, 3, stride=2, padding=1, **cfg)]
    if use_spp:
        layers.append(SPPBottleneck(out_ch, out_ch, kernel_sizes=spp_kernel_sizes, **cfg))
    layers.append(CSPLayer(out_ch, out_ch, num_blocks=num_blocks, add_identity=add_identity,
                           use_depthwise=use_depthwise, **layer_kwargs, **cfg))
    return nn.Sequential(*layers)


class CSPStagesMixin:
    """``stem`` + ``stage1..stageN`` (mmdet's names; ``out_indices`` 0 is the stem), built up
    to the last output. Freezing groups, forward and layer depths for both CSP backbones."""

    num_arch_stages: int = 0

    def _check_common(self, arch: str, arch_ovewrite, deepen_factor: float,
                      widen_factor: float, out_indices: Sequence[int], frozen_stages: int,
                      use_depthwise: bool, norm_eval: bool, with_cp: bool,
                      in_channels: int) -> Tuple[list, list]:
        """The arguments both CSP backbones share, checked and stored; returns the unscaled
        and the scaled arch rows (``arch_ovewrite`` replaces the table row list)."""
        check_choice('arch', arch, self.arch_settings)
        unscaled = check_arch_rows('arch_ovewrite', arch_ovewrite) if arch_ovewrite else \
            self.arch_settings[arch]
        self.arch = arch
        rows = scaled_arch(unscaled, check_factor('deepen_factor', deepen_factor),
                           check_factor('widen_factor', widen_factor))
        self.out_indices = normalize_out_indices(out_indices, len(rows) + 1)
        self.frozen_stages = check_frozen_stages(frozen_stages, len(rows))
        self.use_depthwise = check_bool('use_depthwise', use_depthwise)
        self.norm_eval = check_bool('norm_eval', norm_eval)
        self.with_cp = check_bool('with_cp', with_cp)
        self.in_channels = check_positive_int('in_channels', in_channels)
        return unscaled, rows

    def _build_stages(self, rows: List[tuple], use_depthwise: bool,
                      spp_kernel_sizes: Sequence[int], layer_kwargs: dict, cfg: dict) -> None:
        self.num_arch_stages = len(rows)
        self.layers = ['stem']
        for i, row in enumerate(rows[:max(self.out_indices)], start=1):
            self.add_module(f'stage{i}', make_csp_stage(row, use_depthwise, spp_kernel_sizes,
                                                        layer_kwargs, cfg))
            self.layers.append(f'stage{i}')
        channels = [rows[0][0]] + [row[1] for row in rows]
        self._set_outputs([channels[i] for i in self.out_indices],
                          [2 ** (i + 1) for i in self.out_indices],
                          ['stem' if i == 0 else f'stage{i}' for i in self.out_indices])

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        built = [self._modules[name] for name in self.layers]
        return built + [None] * (self.num_arch_stages + 1 - len(built))

    def _stage_depth(self, name: Optional[str]) -> Tuple[int, int]:
        """``(depth, N + 2)`` of a parameter name without its prefix (``None``: not ours):
        0 the stem, ``i`` ``stage{i}``, ``N + 1`` anything else."""
        num_depths = self.num_arch_stages + 2
        head = name.split('.', 1)[0] if name is not None else ''
        if head == 'stem':
            return 0, num_depths
        match = re.fullmatch(r'stage(\d+)', head)
        return (int(match.group(1)), num_depths) if match else (num_depths - 1, num_depths)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the stem and the built stages in sequence
        (``layers.scripting.ScriptableStages``, index 0 the stem), a list of the same maps."""
        from .scripting import ScriptableStages
        return ScriptableStages(nn.Identity(), [self._modules[n] for n in self.layers],
                                self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        wanted, outs = set(self.out_indices), {}
        for i, name in enumerate(self.layers):
            x = self._modules[name](x)
            if i in wanted:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)
