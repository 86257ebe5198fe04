"""MobileNetV2 (https://arxiv.org/abs/1801.04381): a 3x3 stride-2 stem, seven stages of
inverted residual blocks (1x1 expand, 3x3 depthwise, linear 1x1) and a 1x1 conv to 1280
channels.

Parameter names are mmpretrain 1.2.0's (``conv1``, ``layer{1..7}.{j}.conv.{0,1,2}``,
``conv2``), which are also mmseg 1.2.2's (no ``conv2``: its outputs stop at ``layer7``). mmdet
3.3 names the block's convs ``expand_conv``/``depthwise_conv``/``linear_conv``
(:mod:`~mmbackbones.checkpoint.converters.mmdet_mobilenet_v2` converts, on every load route),
timm ``conv_stem``/``blocks.{i}.{j}``/``conv_head``
(:mod:`~mmbackbones.checkpoint.converters.timm_mobilenet`).
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_frozen_stages, check_positive_int,
                                 normalize_out_indices)
from ..base import BaseBackbone
from ..layers.mobile_blocks import (SequentialInvertedResidual, check_built_stages,
                                    conv_norm_act, make_divisible)
from ..layers.norm import check_norm_cfg

DEFAULT_INIT_CFG = [dict(type='Kaiming', layer=['Conv2d']),
                    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
MAX_WIDEN = 16.0


def check_widen_factor(widen_factor) -> float:
    if isinstance(widen_factor, bool) or not isinstance(widen_factor, (int, float)):
        raise TypeError(f'widen_factor must be a number, got {widen_factor!r}')
    if not 0 < widen_factor <= MAX_WIDEN:
        raise ValueError(f'widen_factor must be in (0, {MAX_WIDEN}], got {widen_factor!r}')
    return float(widen_factor)


def _per_stage(name: str, values, allowed: Sequence[int], count: int = 7) -> Tuple[int, ...]:
    if not isinstance(values, (list, tuple)) or len(values) != count:
        raise ValueError(f'{name} must have one entry per stage ({count}), got {values!r}')
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v not in allowed:
            raise ValueError(f'each of {name} must be one of {list(allowed)}, got {values!r}')
    return tuple(values)


@MODELS.register_module()
class MobileNetV2(BaseBackbone):
    """MobileNetV2, mmpretrain 1.2.0's signature and defaults.

    Args:
        widen_factor (float): channel multiplier (``make_divisible(c * widen_factor, 8)``; the
            last conv has ``int(1280 * widen_factor)`` channels when it is above 1).
        out_indices (Sequence[int]): 0..6 the stages ``layer1..layer7``, 7 the last conv
            ``conv2``; default ``(7, )``. Nothing after the last output is built.
        frozen_stages (int): -1 none, 0 ``conv1``, k (up to 7) also ``layer1..layerk``.
            Frozen layers stay in eval mode (mmpretrain leaves the stem's norm training).
        conv_cfg, norm_cfg, act_cfg (dict): layer configs (``act_cfg`` default ``ReLU6``).
        norm_eval (bool): BatchNorms in eval mode during training.
        with_cp (bool): gradient checkpointing of every block.
        in_channels (int): input channels (extra; mmpretrain's stem takes 3).
        strides (Sequence[int], optional): the first block's stride of each of the 7 stages
            (extra, mmseg's; default mmpretrain's ``(1, 2, 2, 2, 1, 2, 1)``).
        dilations (Sequence[int], optional): the first block's dilation of each stage (extra,
            mmseg's: only the first block of a stage is dilated, as there).
        built_stages (int, optional): build the first ``built_stages`` of the 8 output
            positions even past the last output (extra: the host twins build what mmdet (8) and
            mmseg (7) build, so their whole-model checkpoints load strictly); default up to
            the last output. Stages past the last output never run.
        init_cfg: mmengine init config; default mmpretrain's (Kaiming convs, norms to 1).

    Output ``i`` is named ``layer{i+1}`` (``conv2`` for 7); with the defaults the channels are
    16, 24, 32, 64, 96, 160, 320, 1280 at strides 2, 4, 8, 16, 16, 32, 32, 32.
    """

    # expand_ratio, channel, num_blocks, stride (mmpretrain's)
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                     [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    num_stages = 8

    def __init__(self, widen_factor: float = 1., out_indices: Union[int, Sequence[int]] = (7, ),
                 frozen_stages: int = -1, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False, with_cp: bool = False, init_cfg=DEFAULT_INIT_CFG,
                 *, in_channels: int = 3, strides: Optional[Sequence[int]] = None,
                 dilations: Optional[Sequence[int]] = None,
                 built_stages: Optional[int] = None):
        if init_cfg == DEFAULT_INIT_CFG:
            init_cfg = copy.deepcopy(DEFAULT_INIT_CFG)
        super().__init__(init_cfg=init_cfg)
        self.widen_factor = check_widen_factor(widen_factor)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        # mmpretrain's range: conv1 and layer1..layer7 (conv2 is never frozen)
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages - 1)
        check_bool('norm_eval', norm_eval)
        check_bool('with_cp', with_cp)
        default_strides = tuple(row[3] for row in self.arch_settings)
        self.strides = default_strides if strides is None else _per_stage(
            'strides', strides, (1, 2))
        self.dilations = (1, ) * 7 if dilations is None else _per_stage(
            'dilations', dilations, range(1, 33))
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, check_norm_cfg(norm_cfg), act_cfg
        self.norm_eval, self.with_cp = norm_eval, with_cp

        width = make_divisible(32 * widen_factor, 8)
        self.conv1 = conv_norm_act(self.in_channels, width, 3, stride=2, padding=1,
                                   conv_cfg=conv_cfg, norm_cfg=self.norm_cfg, act_cfg=act_cfg)
        last = check_built_stages(built_stages, self.out_indices, self.num_stages) - 1
        channels, strides, stride = [], [], 2
        self.layers: List[str] = []
        for i, (expand_ratio, channel, num_blocks, _) in enumerate(self.arch_settings[:last + 1]):
            out = make_divisible(channel * widen_factor, 8)
            blocks = []
            for j in range(num_blocks):
                blocks.append(SequentialInvertedResidual(
                    width, out, self.strides[i] if j == 0 else 1, expand_ratio,
                    dilation=self.dilations[i] if j == 0 else 1, conv_cfg=conv_cfg,
                    norm_cfg=self.norm_cfg, act_cfg=act_cfg, with_cp=with_cp))
                width = out
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            self.layers.append(f'layer{i + 1}')
            stride *= self.strides[i]
            channels.append(out)
            strides.append(stride)
        if last == 7:
            self.out_channel = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
            self.conv2 = conv_norm_act(width, self.out_channel, 1, conv_cfg=conv_cfg,
                                       norm_cfg=self.norm_cfg, act_cfg=act_cfg)
            self.layers.append('conv2')
            channels.append(self.out_channel)
            strides.append(stride)
        names = [f'layer{i + 1}' for i in range(7)] + ['conv2']
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [names[i] for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.conv1] + [self._modules[name] for name in self.layers]

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, 10)`` for layer-wise lr decay: 0 ``conv1``, i ``layer{i}``, 8 ``conv2``,
        9 anything else (a head); the groups of ``frozen_stages``."""
        from ..layer_decay import strip_prefix
        name = strip_prefix(param_name, prefix)
        head = None if name is None else name.split('.', 1)[0]
        if head == 'conv1':
            return 0, 10
        if head == 'conv2':
            return 8, 10
        if head is not None and head.startswith('layer') and head[5:].isdigit():
            return int(head[5:]), 10
        return 9, 10

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the stem and the built stages in sequence
        (``layers.scripting.ScriptableStages``), a list of the same maps."""
        from ..layers.scripting import ScriptableStages
        stages = [self._modules[name] for name in self.layers[:max(self.out_indices) + 1]]
        return ScriptableStages(self.conv1, stages, self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        x = self.conv1(x)
        outs = {}
        for i, name in enumerate(self.layers[:max(self.out_indices) + 1]):
            x = self._modules[name](x)
            if i in self.out_indices:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)
