"""MobileNetV3 (https://arxiv.org/abs/1905.02244): a 3x3 stride-2 stem (``layer0``), one
inverted residual block per row of the arch table (``layer1..layerN``: kernel, mid width,
out width, squeeze-excite, ReLU or hard swish, stride) and a 1x1 conv (``layerN+1``).

Parameter names are mmpretrain 1.2.0's, which are also mmseg 1.2.2's (its ``MobileNetV3`` is
this network with ``'same'`` padding on the stride-2 convs, dilation for output stride 8 and
``reduction_factor``: the extras ``tf_padding``, ``output_stride``, ``reduction_factor``).
timm's ``mobilenetv3_*`` / ``tf_mobilenetv3_*`` layout converts
(:mod:`~mmbackbones.checkpoint.converters.timm_mobilenet`; timm's pooled ``conv_head`` and
classifier are a head and dropped).
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_frozen_stages,
                                 check_positive_int, normalize_out_indices)
from ..base import BaseBackbone
from ..layers.mobile_blocks import (SAME_PADDING, InvertedResidual, check_built_stages,
                                    conv_norm_act)
from ..layers.norm import check_norm_cfg

DEFAULT_INIT_CFG = [dict(type='Kaiming', layer=['Conv2d'], nonlinearity='leaky_relu'),
                    dict(type='Normal', layer=['Linear'], std=0.01),
                    dict(type='Constant', layer=['BatchNorm2d'], val=1)]
OUTPUT_STRIDES = (32, 16, 8)
SE_GATE = dict(type='HSigmoid', bias=3, divisor=6, min_value=0, max_value=1)


def _rows(*rows):
    return [list(r) for r in rows]


@MODELS.register_module()
class MobileNetV3(BaseBackbone):
    """MobileNetV3, mmpretrain 1.2.0's signature and defaults.

    Args:
        arch (str): ``'small'``, ``'small_075'``, ``'small_050'`` or ``'large'``.
        conv_cfg, norm_cfg (dict): layer configs (``norm_cfg`` default
            ``BN(eps=0.001, momentum=0.01)``: TF's; timm's ``mobilenetv3_*`` use ``eps=1e-5``).
        out_indices (Sequence[int], optional): 0 the stem ``layer0``, i the block ``layer{i}``,
            the last index the final 1x1 conv; default that one (12 small, 16 large).
        frozen_stages (int): -1 none, k ``layer0..layerk`` (k up to the last index).
        norm_eval (bool): BatchNorms in eval mode during training.
        with_cp (bool): gradient checkpointing of every block.
        in_channels (int): input channels (extra).
        output_stride (int): 32, 16 or 8 (extra): the stride-2 blocks that would go past it
            keep stride 1 and dilate their depthwise convs (and all later ones) by 2 more each
            time (mmseg's ``-d8`` network at 8).
        reduction_factor (int): divides the widths of the blocks of the last stage (extra,
            mmseg's: rows 8+ of small, 12+ of large; the final conv keeps its width).
        tf_padding (bool): the stem and stride-2 depthwise convs pad as TensorFlow's ``'same'``
            (extra: mmseg's network, timm's ``tf_mobilenetv3_*``).
        built_stages (int, optional): build the first ``built_stages`` layers even past the
            last output (extra: mmseg's twin builds them all, as mmseg); never run.
        init_cfg: mmengine init config; default mmpretrain's.

    Output ``i`` is named ``layer{i}``.
    """

    # kernel size, mid channels, out channels, with_se, act type, stride (mmpretrain's)
    arch_settings = {
        'small': _rows([3, 16, 16, True, 'ReLU', 2], [3, 72, 24, False, 'ReLU', 2],
                       [3, 88, 24, False, 'ReLU', 1], [5, 96, 40, True, 'HSwish', 2],
                       [5, 240, 40, True, 'HSwish', 1], [5, 240, 40, True, 'HSwish', 1],
                       [5, 120, 48, True, 'HSwish', 1], [5, 144, 48, True, 'HSwish', 1],
                       [5, 288, 96, True, 'HSwish', 2], [5, 576, 96, True, 'HSwish', 1],
                       [5, 576, 96, True, 'HSwish', 1]),
        'small_075': _rows([3, 16, 16, True, 'ReLU', 2], [3, 72, 24, False, 'ReLU', 2],
                           [3, 88, 24, False, 'ReLU', 1], [5, 96, 32, True, 'HSwish', 2],
                           [5, 192, 32, True, 'HSwish', 1], [5, 192, 32, True, 'HSwish', 1],
                           [5, 96, 40, True, 'HSwish', 1], [5, 120, 40, True, 'HSwish', 1],
                           [5, 240, 72, True, 'HSwish', 2], [5, 432, 72, True, 'HSwish', 1],
                           [5, 432, 72, True, 'HSwish', 1]),
        'small_050': _rows([3, 16, 8, True, 'ReLU', 2], [3, 40, 16, False, 'ReLU', 2],
                           [3, 56, 16, False, 'ReLU', 1], [5, 64, 24, True, 'HSwish', 2],
                           [5, 144, 24, True, 'HSwish', 1], [5, 144, 24, True, 'HSwish', 1],
                           [5, 72, 24, True, 'HSwish', 1], [5, 72, 24, True, 'HSwish', 1],
                           [5, 144, 48, True, 'HSwish', 2], [5, 288, 48, True, 'HSwish', 1],
                           [5, 288, 48, True, 'HSwish', 1]),
        'large': _rows([3, 16, 16, False, 'ReLU', 1], [3, 64, 24, False, 'ReLU', 2],
                       [3, 72, 24, False, 'ReLU', 1], [5, 72, 40, True, 'ReLU', 2],
                       [5, 120, 40, True, 'ReLU', 1], [5, 120, 40, True, 'ReLU', 1],
                       [3, 240, 80, False, 'HSwish', 2], [3, 200, 80, False, 'HSwish', 1],
                       [3, 184, 80, False, 'HSwish', 1], [3, 184, 80, False, 'HSwish', 1],
                       [3, 480, 112, True, 'HSwish', 1], [3, 672, 112, True, 'HSwish', 1],
                       [5, 672, 160, True, 'HSwish', 2], [5, 960, 160, True, 'HSwish', 1],
                       [5, 960, 160, True, 'HSwish', 1]),
    }

    def __init__(self, arch: str = 'small', conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', eps=0.001, momentum=0.01),
                 out_indices: Union[int, Sequence[int], None] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False, init_cfg=DEFAULT_INIT_CFG,
                 *, in_channels: int = 3, output_stride: int = 32, reduction_factor: int = 1,
                 tf_padding: bool = False, built_stages: Optional[int] = None):
        if init_cfg == DEFAULT_INIT_CFG:
            init_cfg = copy.deepcopy(DEFAULT_INIT_CFG)
        super().__init__(init_cfg=init_cfg)
        self.arch = check_choice('arch', arch, self.arch_settings)
        rows = self.arch_settings[arch]
        self.num_stages = len(rows) + 2
        if out_indices is None:
            out_indices = (len(rows) + 1, )
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages - 1)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.output_stride = check_choice('output_stride', output_stride, OUTPUT_STRIDES)
        self.reduction_factor = check_positive_int('reduction_factor', reduction_factor)
        for name, value in (('norm_eval', norm_eval), ('with_cp', with_cp),
                            ('tf_padding', tf_padding)):
            check_bool(name, value)
        self.conv_cfg, self.norm_cfg = conv_cfg, check_norm_cfg(norm_cfg)
        self.norm_eval, self.with_cp, self.tf_padding = norm_eval, with_cp, tf_padding
        same = dict(type=SAME_PADDING)
        self.layer0 = conv_norm_act(self.in_channels, 16, 3, stride=2, padding=1,
                                    conv_cfg=same if tf_padding else conv_cfg,
                                    norm_cfg=self.norm_cfg, act_cfg=dict(type='HSwish'))
        last = check_built_stages(built_stages, self.out_indices, self.num_stages) - 1
        channels, strides = [16], [2]
        width, stride, dilation = 16, 2, 1
        reduce_from = 12 if arch == 'large' else 8
        for i, (kernel, mid, out, with_se, act, block_stride) in enumerate(rows[:last]):
            if i >= reduce_from:
                mid, out = mid // self.reduction_factor, out // self.reduction_factor
            if block_stride == 2 and stride * 2 > output_stride:
                block_stride, dilation = 1, dilation * 2
            se_cfg = dict(channels=mid, ratio=4, act_cfg=(dict(type='ReLU'), SE_GATE)) \
                if with_se else None
            self.add_module(f'layer{i + 1}', InvertedResidual(
                width, out, mid, kernel_size=kernel, stride=block_stride, dilation=dilation,
                se_cfg=se_cfg, conv_cfg=conv_cfg,
                dw_conv_cfg=same if tf_padding and block_stride == 2 else conv_cfg,
                norm_cfg=self.norm_cfg, act_cfg=dict(type=act), with_cp=with_cp))
            width, stride = out, stride * block_stride
            channels.append(out)
            strides.append(stride)
        if last == len(rows) + 1:
            head = rows[-1][1]
            self.add_module(f'layer{last}', conv_norm_act(
                width, head, 1, conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                act_cfg=dict(type='HSwish')))
            channels.append(head)
            strides.append(stride)
        self.layers = [f'layer{i}' for i in range(last + 1)]
        self.feat_dim = rows[-1][1]
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'layer{i}' for i in self.out_indices])
        self._run = self.layers[:max(self.out_indices) + 1]
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self._modules[name] for name in self.layers]

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_stages + 1)``: ``i`` for ``layer{i}``, the last for anything else."""
        from ..layer_decay import strip_prefix
        name = strip_prefix(param_name, prefix)
        head = None if name is None else name.split('.', 1)[0]
        total = self.num_stages + 1
        if head is not None and head.startswith('layer') and head[5:].isdigit():
            return int(head[5:]), total
        return total - 1, total

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the built layers in sequence
        (``layers.scripting.ScriptableStages``, index 0 the stem), a list of the same maps."""
        from ..layers.scripting import ScriptableStages
        return ScriptableStages(nn.Identity(), [self._modules[n] for n in self._run],
                                self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        outs = {}
        for i, name in enumerate(self._run):
            x = self._modules[name](x)
            if i in self.out_indices:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)
