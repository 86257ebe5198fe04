"""EfficientNet (https://arxiv.org/abs/1905.11946) and EfficientNet-EdgeTPU: a stride-2 stem
(``layers.0``), stages of MBConv blocks with squeeze-excite (``layers.1..``; EdgeTPU's first
stages use fused "edge" blocks) and a 1x1 conv to 1280 channels (the last ``layers`` entry),
widths and depths scaled per variant (``b0``..``b8``, ``l2``, ``es``/``em``/``el``).

Parameter names are mmpretrain 1.2.0's, which are also mmdet 3.3's (whose edge blocks put the
stride on their 1x1 conv: ``edge_residual_stride='conv2'``). mmpretrain regroups the stages
(a stride-1 stage joins the previous one), so timm's ``blocks.{s}.{j}`` map to
``layers.{i}.{j}`` by position (:mod:`~mmbackbones.checkpoint.converters.timm_efficientnet`).
The defaults are TensorFlow's (``'same'`` padding, BN ``eps=1e-3``): timm's ``tf_efficientnet_*``
numbers; timm's ``efficientnet_b*`` use ``conv_cfg=None`` and ``eps=1e-5``.
"""
import copy
import math
from typing import Optional, Sequence, Tuple, Union

from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_positive_int, check_rate,
                                 normalize_out_indices)
from ..base import BaseBackbone
from ..layers.mobile_blocks import (EdgeResidual, InvertedResidual, LayerListStagesMixin,
                                    conv_norm_act, drop_path_rates, make_divisible)
from ..layers.norm import check_norm_cfg

DEFAULT_INIT_CFG = [dict(type='Kaiming', layer='Conv2d'),
                    dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1)]
EDGE_STRIDES = ('conv1', 'conv2')


def model_scaling(layer_setting, arch_setting):
    """mmpretrain's scaling: widths times ``arch_setting[0]`` (``make_divisible(.., 8)``), each
    stage split where the width changes, its depth times ``arch_setting[1]`` (rounded up, the
    last block repeated), and a split part whose first block has stride 1 joined to the
    previous stage (the first stage aside)."""
    rows = copy.deepcopy(layer_setting)
    for stage in rows:
        for block in stage:
            block[1] = make_divisible(block[1] * arch_setting[0], 8)
    split = [rows[0]]
    for stage in rows[1:-1]:
        start = 0
        for i in range(1, len(stage) + 1):
            if i == len(stage) or stage[i][1] != stage[i - 1][1]:
                split.append(stage[start:i])
                start = i
    split.append(rows[-1])
    merged = [split[0]]
    for i, stage in enumerate(split[1:-1]):
        depth = int(math.ceil(arch_setting[1] * len(stage)))
        part = stage[:depth] if depth <= len(stage) else \
            copy.deepcopy(stage) + [stage[-1]] * (depth - len(stage))
        if part[0][3] == 1 and i != 0:
            merged[-1] = merged[-1] + list(part)
        else:
            merged.append(list(part))
    merged.append(split[-1])
    return merged


@MODELS.register_module()
class EfficientNet(LayerListStagesMixin, BaseBackbone):
    """EfficientNet, mmpretrain 1.2.0's signature and defaults.

    Args:
        arch (str): ``'b0'``..``'b8'``, ``'l2'`` or EdgeTPU's ``'es'``, ``'em'``, ``'el'``.
        drop_path_rate (float): stochastic depth, linear from 0 over the blocks.
        out_indices (Sequence[int]): 0 the stem, i the i-th stage, 6 the final conv; default
            ``(6, )``. Nothing after the last output is built.
        frozen_stages (int): k freezes ``layers[0..k-1]`` (mmpretrain's meaning: 0, the
            default, and -1 freeze nothing, 1 the stem).
        conv_cfg (dict): default ``Conv2dAdaptivePadding`` (TF ``'same'`` padding); ``None``
            pads ``k // 2``.
        norm_cfg, act_cfg (dict): default ``BN(eps=1e-3)`` and ``Swish``.
        norm_eval (bool): BatchNorms in eval mode during training.
        with_cp (bool): gradient checkpointing of every block.
        in_channels (int): input channels (extra).
        edge_residual_stride (str): where EdgeTPU's edge blocks stride: ``'conv1'``
            (mmpretrain's) or ``'conv2'`` (extra: mmdet's, whose ``conv2`` also takes
            ``conv_cfg``).
        init_cfg: mmengine init config; default mmpretrain's.

    Output ``i`` is named ``stage{i}``.
    """

    # kernel_size, out_channel, se_ratio, stride, expand_ratio, block_type
    # (-1: not a block, 0: InvertedResidual, 1: EdgeResidual), mmpretrain's
    layer_settings = {
        'b': [[[3, 32, 0, 2, 0, -1]],
              [[3, 16, 4, 1, 1, 0]],
              [[3, 24, 4, 2, 6, 0], [3, 24, 4, 1, 6, 0]],
              [[5, 40, 4, 2, 6, 0], [5, 40, 4, 1, 6, 0]],
              [[3, 80, 4, 2, 6, 0], [3, 80, 4, 1, 6, 0], [3, 80, 4, 1, 6, 0],
               [5, 112, 4, 1, 6, 0], [5, 112, 4, 1, 6, 0], [5, 112, 4, 1, 6, 0]],
              [[5, 192, 4, 2, 6, 0], [5, 192, 4, 1, 6, 0], [5, 192, 4, 1, 6, 0],
               [5, 192, 4, 1, 6, 0], [3, 320, 4, 1, 6, 0]],
              [[1, 1280, 0, 1, 0, -1]]],
        'e': [[[3, 32, 0, 2, 0, -1]],
              [[3, 24, 0, 1, 3, 1]],
              [[3, 32, 0, 2, 8, 1], [3, 32, 0, 1, 8, 1]],
              [[3, 48, 0, 2, 8, 1], [3, 48, 0, 1, 8, 1], [3, 48, 0, 1, 8, 1],
               [3, 48, 0, 1, 8, 1]],
              [[5, 96, 0, 2, 8, 0], [5, 96, 0, 1, 8, 0], [5, 96, 0, 1, 8, 0],
               [5, 96, 0, 1, 8, 0], [5, 96, 0, 1, 8, 0], [5, 144, 0, 1, 8, 0],
               [5, 144, 0, 1, 8, 0], [5, 144, 0, 1, 8, 0], [5, 144, 0, 1, 8, 0]],
              [[5, 192, 0, 2, 8, 0], [5, 192, 0, 1, 8, 0]],
              [[1, 1280, 0, 1, 0, -1]]],
    }
    # width factor, depth factor, resolution (mmpretrain's)
    arch_settings = {
        'b0': (1.0, 1.0, 224), 'b1': (1.0, 1.1, 240), 'b2': (1.1, 1.2, 260),
        'b3': (1.2, 1.4, 300), 'b4': (1.4, 1.8, 380), 'b5': (1.6, 2.2, 456),
        'b6': (1.8, 2.6, 528), 'b7': (2.0, 3.1, 600), 'b8': (2.2, 3.6, 672),
        'l2': (4.3, 5.3, 800), 'es': (1.0, 1.0, 224), 'em': (1.0, 1.1, 240),
        'el': (1.2, 1.4, 300),
    }
    num_stages = 7

    def __init__(self, arch: str = 'b0', drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = (6, ), frozen_stages: int = 0,
                 conv_cfg: Optional[dict] = dict(type='Conv2dAdaptivePadding'),
                 norm_cfg: dict = dict(type='BN', eps=1e-3), act_cfg: dict = dict(type='Swish'),
                 norm_eval: bool = False, with_cp: bool = False, init_cfg=DEFAULT_INIT_CFG,
                 *, in_channels: int = 3, edge_residual_stride: str = 'conv1'):
        if init_cfg == DEFAULT_INIT_CFG:
            init_cfg = copy.deepcopy(DEFAULT_INIT_CFG)
        super().__init__(init_cfg=init_cfg)
        self.arch = check_choice('arch', arch, self.arch_settings)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        self.drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        self.in_channels = check_positive_int('in_channels', in_channels)
        check_choice('edge_residual_stride', edge_residual_stride, EDGE_STRIDES)
        check_bool('norm_eval', norm_eval)
        check_bool('with_cp', with_cp)
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, check_norm_cfg(norm_cfg), act_cfg
        self.norm_eval, self.with_cp = norm_eval, with_cp
        self.arch_setting = self.arch_settings[arch]
        self.layer_setting = model_scaling(
            self.layer_settings['b' if arch == 'l2' else arch[:1]], self.arch_setting)

        first, final = self.layer_setting[0][0], self.layer_setting[-1][0]
        width = make_divisible(first[1], 8)
        self.layers = nn.ModuleList([conv_norm_act(
            self.in_channels, width, first[0], stride=first[3], padding=first[0] // 2,
            conv_cfg=conv_cfg, norm_cfg=self.norm_cfg, act_cfg=act_cfg)])
        channels, strides, stride = [width], [first[3]], first[3]
        last = max(self.out_indices)
        stages = self.layer_setting[1:-1]
        rates = drop_path_rates(self.drop_path_rate, sum(len(s) for s in stages))
        index = 0
        for stage in stages[:last]:
            blocks = []
            for i, (kernel, out, se_ratio, block_stride, expand, kind) in enumerate(stage):
                out = make_divisible(out, 8)
                with_residual = True
                if kind == 1 and i > 0 and expand == 3:
                    with_residual, expand = False, 4
                mid = int(width * expand)
                se_cfg = None if se_ratio <= 0 else dict(
                    channels=mid, ratio=expand * se_ratio, divisor=1,
                    act_cfg=(act_cfg, dict(type='Sigmoid')))
                common = dict(kernel_size=kernel, stride=block_stride, se_cfg=se_cfg,
                              conv_cfg=conv_cfg, norm_cfg=self.norm_cfg, act_cfg=act_cfg,
                              drop_path_rate=rates[index], with_cp=with_cp)
                if kind == 1:
                    blocks.append(EdgeResidual(
                        width, out, mid, with_residual=with_residual,
                        stride_in_conv2=edge_residual_stride == 'conv2', **common))
                else:
                    blocks.append(InvertedResidual(width, out, mid, **common))
                width, stride, index = out, stride * block_stride, index + 1
            self.layers.append(nn.Sequential(*blocks))
            channels.append(width)
            strides.append(stride)
        if last == len(self.layer_setting) - 1:
            self.layers.append(conv_norm_act(
                width, final[1], final[0], stride=final[3], padding=final[0] // 2,
                conv_cfg=conv_cfg, norm_cfg=self.norm_cfg, act_cfg=act_cfg))
            channels.append(final[1])
            strides.append(stride * final[3])
        self.out_channel = final[1]
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'stage{i}' for i in self.out_indices])
        self._freeze_stages()

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(i, len(layers) + 1)`` for ``layers.{i}``; the last depth for anything else."""
        from ..layer_decay import strip_prefix
        return self._layer_list_depth(strip_prefix(param_name, prefix))
