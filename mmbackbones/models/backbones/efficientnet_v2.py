"""EfficientNetV2 (https://arxiv.org/abs/2104.00298): a stride-2 stem (``layers.0``), one
stage per row of the arch table (``layers.1..``: conv-norm-act blocks with a residual, fused
MBConv, then MBConv with squeeze-excite) and a 1x1 conv (the last ``layers`` entry).

Parameter names are mmpretrain 1.2.0's; its stages are timm's ``tf_efficientnetv2_*`` stages
one to one (:mod:`~mmbackbones.checkpoint.converters.timm_efficientnet`). The defaults are
TensorFlow's (``'same'`` padding on the stem and the stride-2 blocks, BN ``eps=1e-3``).
"""
import copy
from typing import Optional, Sequence, Tuple, Union

from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_positive_int, check_rate,
                                 normalize_out_indices)
from ..base import BaseBackbone
from ..layers.mobile_blocks import (ConvNormActSkip, EdgeResidual, InvertedResidual,
                                    LayerListStagesMixin, conv_norm_act, drop_path_rates)
from ..layers.norm import check_norm_cfg

DEFAULT_INIT_CFG = [dict(type='Kaiming', layer='Conv2d'),
                    dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1)]


def _arch(*rows):
    return [list(r) for r in rows]


_S = _arch([2, 3, 1, 1, 24, 24, 0.0, -1], [4, 3, 2, 4, 24, 48, 0.0, 0],
           [4, 3, 2, 4, 48, 64, 0.0, 0], [6, 3, 2, 4, 64, 128, 0.25, 1],
           [9, 3, 1, 6, 128, 160, 0.25, 1], [15, 3, 2, 6, 160, 256, 0.25, 1],
           [1, 1, 1, 1, 256, 1280, 0.0, -2])
_M = _arch([3, 3, 1, 1, 24, 24, 0.0, -1], [5, 3, 2, 4, 24, 48, 0.0, 0],
           [5, 3, 2, 4, 48, 80, 0.0, 0], [7, 3, 2, 4, 80, 160, 0.25, 1],
           [14, 3, 1, 6, 160, 176, 0.25, 1], [18, 3, 2, 6, 176, 304, 0.25, 1],
           [5, 3, 1, 6, 304, 512, 0.25, 1], [1, 1, 1, 1, 512, 1280, 0.0, -2])
_L = _arch([4, 3, 1, 1, 32, 32, 0.0, -1], [7, 3, 2, 4, 32, 64, 0.0, 0],
           [7, 3, 2, 4, 64, 96, 0.0, 0], [10, 3, 2, 4, 96, 192, 0.25, 1],
           [19, 3, 1, 6, 192, 224, 0.25, 1], [25, 3, 2, 6, 224, 384, 0.25, 1],
           [7, 3, 1, 6, 384, 640, 0.25, 1], [1, 1, 1, 1, 640, 1280, 0.0, -2])
_XL = _arch([4, 3, 1, 1, 32, 32, 0.0, -1], [8, 3, 2, 4, 32, 64, 0.0, 0],
            [8, 3, 2, 4, 64, 96, 0.0, 0], [16, 3, 2, 4, 96, 192, 0.25, 1],
            [24, 3, 1, 6, 192, 256, 0.25, 1], [32, 3, 2, 6, 256, 512, 0.25, 1],
            [8, 3, 1, 6, 512, 640, 0.25, 1], [1, 1, 1, 1, 640, 1280, 0.0, -2])


def _b(depths, widths, head):
    """The ``b0``..``b3`` rows: ``depths`` per stage, ``widths`` (stem first), ``head``."""
    kinds = ((3, 1, 1, 0.0, -1), (3, 2, 4, 0.0, 0), (3, 2, 4, 0.0, 0), (3, 2, 4, 0.25, 1),
             (3, 1, 6, 0.25, 1), (3, 2, 6, 0.25, 1))
    rows = [[d, k, s, e, widths[i], widths[i + 1], se, t]
            for i, (d, (k, s, e, se, t)) in enumerate(zip(depths, kinds))]
    return rows + [[1, 1, 1, 1, widths[-1], head, 0.0, -2]]


@MODELS.register_module()
class EfficientNetV2(LayerListStagesMixin, BaseBackbone):
    """EfficientNetV2, mmpretrain 1.2.0's signature and defaults.

    Args:
        arch (str): ``'s'``/``'small'``, ``'m'``/``'medium'``, ``'l'``/``'large'``, ``'xl'``,
            ``'b0'`` to ``'b3'``.
        in_channels (int): input channels.
        drop_path_rate (float): stochastic depth, linear from 0 over the blocks.
        out_indices (Sequence[int]): 0 the stem, i the i-th stage, the last index (-1) the
            final conv; default ``(-1, )``. Nothing after the last output is built.
        frozen_stages (int): k freezes ``layers[0..k-1]`` (mmpretrain's meaning: 0, the
            default, and -1 freeze nothing).
        conv_cfg (dict): the stem's, the stride-2 blocks' and the final conv's (default
            ``Conv2dAdaptivePadding``: TF ``'same'`` padding).
        norm_cfg, act_cfg (dict): default ``BN(eps=1e-3, momentum=0.1)`` and ``Swish``.
        norm_eval (bool): BatchNorms in eval mode during training.
        with_cp (bool): gradient checkpointing of every MBConv/fused block.
        init_cfg: mmengine init config; default mmpretrain's.

    Output ``i`` is named ``stage{i}``.
    """

    # repeat, kernel_size, stride, expand_ratio, in_channel, out_channel, se_ratio,
    # block_type (-2: ConvModule, -1: conv with residual, 0: FusedMBConv, 1: MBConv)
    arch_settings = {
        **dict.fromkeys(['small', 's'], _S), **dict.fromkeys(['m', 'medium'], _M),
        **dict.fromkeys(['l', 'large'], _L), 'xl': _XL,
        'b0': _b((1, 2, 2, 3, 5, 8), (32, 16, 32, 48, 96, 112, 192), 1280),
        'b1': _b((2, 3, 3, 4, 6, 9), (32, 16, 32, 48, 96, 112, 192), 1280),
        'b2': _b((2, 3, 3, 4, 6, 10), (32, 16, 32, 56, 104, 120, 208), 1408),
        'b3': _b((2, 3, 3, 5, 7, 12), (40, 16, 40, 56, 112, 136, 232), 1536),
    }

    def __init__(self, arch: str = 's', in_channels: int = 3, drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = (-1, ), frozen_stages: int = 0,
                 conv_cfg: Optional[dict] = dict(type='Conv2dAdaptivePadding'),
                 norm_cfg: dict = dict(type='BN', eps=1e-3, momentum=0.1),
                 act_cfg: dict = dict(type='Swish'), norm_eval: bool = False,
                 with_cp: bool = False, init_cfg=DEFAULT_INIT_CFG):
        if init_cfg == DEFAULT_INIT_CFG:
            init_cfg = copy.deepcopy(DEFAULT_INIT_CFG)
        super().__init__(init_cfg=init_cfg)
        check_choice('arch', arch, self.arch_settings)
        self.arch = self.arch_settings[arch]
        self.num_stages = len(self.arch) + 1
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        check_bool('norm_eval', norm_eval)
        check_bool('with_cp', with_cp)
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, check_norm_cfg(norm_cfg), act_cfg
        self.norm_eval, self.with_cp = norm_eval, with_cp
        self.out_channels_last = self.arch[-1][5]

        width = self.arch[0][4]
        self.layers = nn.ModuleList([conv_norm_act(
            self.in_channels, width, 3, stride=2, padding=0, conv_cfg=conv_cfg,
            norm_cfg=self.norm_cfg, act_cfg=act_cfg)])
        channels, strides, stride = [width], [2], 2
        last = max(self.out_indices)
        rows = self.arch[:-1]
        rates = drop_path_rates(self.drop_path_rate, sum(r[0] for r in rows))
        index = 0
        for repeat, kernel, row_stride, expand, _, out, se_ratio, kind in rows[:last]:
            blocks = []
            for i in range(repeat):
                block_stride = row_stride if i == 0 else 1
                if kind == -1:
                    skip = block_stride == 1 and width == out
                    blocks.append(ConvNormActSkip(
                        width, out, kernel, stride=block_stride, has_skip=skip,
                        drop_path_rate=rates[index] if skip else 0.0, norm_cfg=self.norm_cfg,
                        act_cfg=act_cfg))
                else:
                    mid = int(width * expand)
                    se_cfg = dict(channels=mid, ratio=expand * (1.0 / se_ratio), divisor=1,
                                  act_cfg=(act_cfg, dict(type='Sigmoid'))) \
                        if kind != 0 and se_ratio > 0 else None
                    block = EdgeResidual if kind == 0 else InvertedResidual
                    blocks.append(block(
                        width, out, mid, kernel_size=kernel, stride=block_stride, se_cfg=se_cfg,
                        conv_cfg=conv_cfg if block_stride == 2 else None,
                        norm_cfg=self.norm_cfg, act_cfg=act_cfg, drop_path_rate=rates[index],
                        with_cp=with_cp))
                width, stride, index = out, stride * block_stride, index + 1
            self.layers.append(nn.Sequential(*blocks))
            channels.append(width)
            strides.append(stride)
        if last == len(self.arch):
            _, kernel, final_stride, _, _, out, _, _ = self.arch[-1]
            self.layers.append(conv_norm_act(
                width, out, kernel, stride=final_stride, padding=0, conv_cfg=conv_cfg,
                norm_cfg=self.norm_cfg, act_cfg=act_cfg))
            channels.append(out)
            strides.append(stride * final_stride)
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'stage{i}' for i in self.out_indices])
        self._freeze_stages()

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(i, len(layers) + 1)`` for ``layers.{i}``; the last depth for anything else."""
        from ..layer_decay import strip_prefix
        return self._layer_list_depth(strip_prefix(param_name, prefix))
