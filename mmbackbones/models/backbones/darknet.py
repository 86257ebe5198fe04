"""Darknet-53, YOLOv3's backbone (https://arxiv.org/abs/1804.02767): mmdet 3.3's ``Darknet``.

``conv1`` (3x3, stride 1, 32 channels), then five ``conv_res_block{i}``: a stride-2 3x3 conv
and ``(1, 2, 8, 8, 4)`` residual blocks (1x1 conv to half the channels, 3x3 conv back, plus the
input). Parameter names are mmdet's (``conv_res_block{i}.conv.*``, ``.res{j}.conv{1,2}.*``):
an mmdet YOLOv3 checkpoint loads with ``prefix='backbone'`` and ``strict=True``. timm's
``darknet53`` has the same structure with LeakyReLU slope 0.01 (mmdet's is 0.1): its weights
load through :mod:`~mmbackbones.checkpoint.converters.timm_darknet` into
``Darknet(act_cfg=dict(type='LeakyReLU', negative_slope=0.01))`` with equal outputs.

``frozen_stages`` has the contract's meaning here (-1 nothing, 0 ``conv1``, ``k`` also
``conv_res_block1..k``); mmdet's ``k`` freezes ``conv1`` and blocks ``1..k-1`` (its
``mmbackbones.mmdet.Darknet`` twin translates).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_frozen_stages,
                                 check_positive_int, normalize_out_indices)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.conv_norm_act import ConvNormAct
from ..layers.norm import check_norm_cfg

LEAKY = dict(type='LeakyReLU', negative_slope=0.1)
DARKNET_INIT_CFG = [dict(type='Kaiming', layer='Conv2d'),
                    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]


class DarknetResBlock(nn.Module):
    """``conv1`` (1x1 to ``C/2``), ``conv2`` (3x3 back to ``C``), plus the input
    (mmdet's ``ResBlock``)."""

    def __init__(self, in_channels: int, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=LEAKY):
        super().__init__()
        if in_channels % 2:
            raise ValueError(f'a Darknet residual block halves its channels, got odd '
                             f'in_channels={in_channels}')
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvNormAct(in_channels, in_channels // 2, 1, **cfg)
        self.conv2 = ConvNormAct(in_channels // 2, in_channels, 3, padding=1, **cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + x


def make_conv_res_block(in_channels: int, out_channels: int, res_repeat: int,
                        **cfg) -> nn.Sequential:
    """``conv`` (3x3, stride 2) then ``res0..res{n-1}``."""
    block = nn.Sequential()
    block.add_module('conv', ConvNormAct(in_channels, out_channels, 3, stride=2, padding=1,
                                         **cfg))
    for idx in range(res_repeat):
        block.add_module(f'res{idx}', DarknetResBlock(out_channels, **cfg))
    return block


@MODELS.register_module()
class Darknet(BaseBackbone):
    """Darknet-53, mmdet 3.3's signature and defaults (``frozen_stages``: the contract's count,
    see the module docstring).

    Args:
        depth (int): 53 (the only one).
        out_indices (Sequence[int]): 0 ``conv1`` (stride 1), ``i`` ``conv_res_block{i}``
            (stride ``2 ** i``); default ``(3, 4, 5)``, 256/512/1024 channels.
        frozen_stages (int): -1 nothing, 0 ``conv1``, ``k`` also ``conv_res_block1..k``.
        conv_cfg, norm_cfg, act_cfg (dict): layer configs (BN; LeakyReLU slope 0.1).
        norm_eval (bool): BatchNorms in eval mode while training (default True, mmdet's).
        pretrained (str, optional): deprecated spelling of a Pretrained ``init_cfg``.
        init_cfg: default Kaiming convs, norms to 1 (mmdet's).
        in_channels (int): image channels (extra; mmdet fixes 3).
        with_cp (bool): gradient checkpointing of every residual block (extra).
    """

    arch_settings = {
        53: ((1, 2, 8, 8, 4), ((32, 64), (64, 128), (128, 256), (256, 512), (512, 1024)))
    }

    def __init__(self, depth: int = 53, out_indices: Sequence[int] = (3, 4, 5),
                 frozen_stages: int = -1, conv_cfg=None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), act_cfg: dict = LEAKY,
                 norm_eval: bool = True, pretrained: Optional[str] = None, init_cfg=None,
                 in_channels: int = 3, with_cp: bool = False):
        if init_cfg is None and pretrained is None:
            init_cfg = [dict(c) for c in DARKNET_INIT_CFG]
        super().__init__(init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg))
        self.depth = check_choice('depth', depth, self.arch_settings)
        self.layers, self.channels = self.arch_settings[depth]
        num_stages = len(self.layers)
        self.out_indices = normalize_out_indices(out_indices, num_stages + 1)
        self.frozen_stages = check_frozen_stages(frozen_stages, num_stages)
        self.norm_eval = check_bool('norm_eval', norm_eval)
        self.with_cp = check_bool('with_cp', with_cp)
        self.in_channels = check_positive_int('in_channels', in_channels)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=check_norm_cfg(norm_cfg), act_cfg=act_cfg)
        self.conv1 = ConvNormAct(self.in_channels, 32, 3, padding=1, **cfg)
        self.cr_blocks = ['conv1']
        for i in range(max(self.out_indices)):
            name = f'conv_res_block{i + 1}'
            self.add_module(name, make_conv_res_block(*self.channels[i], self.layers[i], **cfg))
            self.cr_blocks.append(name)
        channels = [32] + [c[1] for c in self.channels]
        self._set_outputs([channels[i] for i in self.out_indices],
                          [2 ** i for i in self.out_indices],
                          ['stem' if i == 0 else f'stage{i}' for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        built = [self._modules[name] for name in self.cr_blocks]
        return built + [None] * (len(self.layers) + 1 - len(built))

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, 7)``: 0 ``conv1``, ``i`` ``conv_res_block{i}``, 6 anything else."""
        num_depths = len(self.layers) + 2
        name = strip_prefix(param_name, prefix)
        head = name.split('.', 1)[0] if name is not None else ''
        if head == 'conv1':
            return 0, num_depths
        if head.startswith('conv_res_block') and head[14:].isdigit():
            return int(head[14:]), num_depths
        return num_depths - 1, num_depths

    def _run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``block(x)``; with ``with_cp`` (and a graph to keep) every residual block of a
        ``conv_res_block`` is checkpointed."""
        if not (self.with_cp and x.requires_grad and isinstance(block, nn.Sequential)):
            return block(x)
        import torch.utils.checkpoint as cp
        for layer in block:
            x = cp.checkpoint(layer, x, use_reentrant=False) \
                if isinstance(layer, DarknetResBlock) else layer(x)
        return x

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: ``conv1`` and the built ``conv_res_block``s in
        sequence (``layers.scripting.ScriptableStages``), a list of the same maps."""
        from ..layers.scripting import ScriptableStages
        return ScriptableStages(nn.Identity(), [self._modules[n] for n in self.cr_blocks],
                                self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(N, in_channels, H, W)`` -> one map per ``out_indices`` entry, in that order."""
        self.check_input(x)
        wanted, outs = set(self.out_indices), {}
        for i, name in enumerate(self.cr_blocks):
            x = self._run_block(self._modules[name], x)
            if i in wanted:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)
