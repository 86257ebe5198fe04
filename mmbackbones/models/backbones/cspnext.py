"""RTMDet's CSPNeXt (https://arxiv.org/abs/2212.07784): mmdet 3.3's ``CSPNeXt``.

A stem of three 3x3 convs (stride 2; the first two to half the width), then stages of a
stride-2 3x3 conv, an SPP block in the last stage, and a
:class:`~..layers.csp_layer.CSPLayer` of :class:`~..layers.csp_layer.CSPNeXtBlock` s (3x3 conv,
depthwise 5x5) with channel attention. Parameter names are mmdet's (``stem.{0,1,2}.*``,
``stage{i}.{0,1,2}.*``), so an mmdet RTMDet checkpoint (or mmdet's ImageNet-pretrained
CSPNeXt) loads with ``prefix='backbone'`` and ``strict=True``. mmpretrain and timm have no
CSPNeXt.

Differences from mmdet, documented extras: ``in_channels`` (mmdet: always 3), ``with_cp``;
stages after the last ``out_indices`` are not built; outputs come in ``out_indices`` order
(mmdet returns them in stage order; the ``mmbackbones.mmdet.CSPNeXt`` twin sorts).
"""
from typing import Sequence, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import check_bool
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.csp_layer import (YOLO_BN, YOLO_INIT_CFG, CSPStagesMixin, check_factor,
                                check_kernel_sizes)
from ..layers.conv_norm_act import ConvNormAct
from ..layers.norm import check_norm_cfg


@MODELS.register_module()
class CSPNeXt(CSPStagesMixin, BaseBackbone):
    """CSPNeXt of RTMDet, mmdet 3.3's signature and defaults.

    Args:
        arch (str): ``'P5'`` (4 stages, stride 32) or ``'P6'`` (5 stages, stride 64).
        deepen_factor, widen_factor (float): block-count and channel multipliers (RTMDet-tiny
            0.167 / 0.375, -s 0.33 / 0.5, -m 0.67 / 0.75, -l 1 / 1, -x 1.33 / 1.25).
        out_indices (Sequence[int]): 0 the stem, ``i`` ``stage{i}`` (negative from the end);
            default ``(2, 3, 4)``, strides 8, 16, 32.
        frozen_stages (int): -1 nothing, 0 the stem, ``k`` the stem and ``stage1..k``
            (mmdet's meaning).
        use_depthwise (bool): depthwise separable stage convs and block 3x3 convs.
        expand_ratio (float): the CSP layers' hidden width over their output width.
        arch_ovewrite (list, optional): rows ``[in, out, num_blocks, add_identity, use_spp]``
            replacing the arch table (mmdet's spelling).
        spp_kernel_sizes (Sequence[int]): the SPP max-pool kernels.
        channel_attention (bool): RTMDet's channel attention in every CSP layer.
        conv_cfg, norm_cfg, act_cfg (dict): layer configs (BN momentum 0.03, eps 1e-3; SiLU).
            As in mmdet, the stem and the blocks' first conv are plain convs whatever
            ``conv_cfg`` says.
        norm_eval (bool): BatchNorms in eval mode while training.
        init_cfg: mmdet's default, Kaiming-uniform convs.
        in_channels (int): image channels (extra; mmdet fixes 3).
        with_cp (bool): gradient checkpointing of every CSP block (extra).

    Input ``(N, in_channels, H, W)``; output ``i`` has stride ``2 ** (i + 1)``.
    """

    arch_settings = {
        'P5': [[64, 128, 3, True, False], [128, 256, 6, True, False],
               [256, 512, 6, True, False], [512, 1024, 3, False, True]],
        'P6': [[64, 128, 3, True, False], [128, 256, 6, True, False],
               [256, 512, 6, True, False], [512, 768, 3, True, False],
               [768, 1024, 3, False, True]]
    }

    def __init__(self, arch: str = 'P5', deepen_factor: float = 1.0, widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4), frozen_stages: int = -1,
                 use_depthwise: bool = False, expand_ratio: float = 0.5, arch_ovewrite=None,
                 spp_kernel_sizes: Sequence[int] = (5, 9, 13), channel_attention: bool = True,
                 conv_cfg=None, norm_cfg: dict = YOLO_BN, act_cfg: dict = dict(type='SiLU'),
                 norm_eval: bool = False, init_cfg=YOLO_INIT_CFG, in_channels: int = 3,
                 with_cp: bool = False):
        super().__init__(init_cfg=dict(init_cfg) if init_cfg is YOLO_INIT_CFG else init_cfg)
        self.arch_rows_unscaled, rows = self._check_common(
            arch, arch_ovewrite, deepen_factor, widen_factor, out_indices, frozen_stages,
            use_depthwise, norm_eval, with_cp, in_channels)
        spp = check_kernel_sizes('spp_kernel_sizes', spp_kernel_sizes)
        layer_kwargs = dict(use_cspnext_block=True, with_cp=with_cp,
                            expand_ratio=check_factor('expand_ratio', expand_ratio),
                            channel_attention=check_bool('channel_attention',
                                                         channel_attention))
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=check_norm_cfg(norm_cfg), act_cfg=act_cfg)
        # mmdet: int(stem_width * widen_factor // 2), computed before the int()
        first = int(self.arch_rows_unscaled[0][0] * widen_factor // 2)
        stem_cfg = dict(norm_cfg=cfg['norm_cfg'], act_cfg=act_cfg)
        self.stem = nn.Sequential(
            ConvNormAct(self.in_channels, first, 3, stride=2, padding=1, **stem_cfg),
            ConvNormAct(first, first, 3, stride=1, padding=1, **stem_cfg),
            ConvNormAct(first, rows[0][0], 3, stride=1, padding=1, **stem_cfg))
        self._build_stages(rows, use_depthwise, spp, layer_kwargs, cfg)
        self._freeze_stages()
        if not channel_attention:
            self._register_load_state_dict_pre_hook(self._refuse_attention_weights)

    @staticmethod
    def _refuse_attention_weights(state_dict, prefix, *args):
        """A model built with ``channel_attention=False`` refuses a checkpoint that has the
        attention (``stage{i}.{j}.attention.fc``): without it the network computes something
        else (the generic rule would take ``fc`` for a classifier head and drop it)."""
        found = [k for k in state_dict if k.startswith(prefix) and '.attention.fc.' in k]
        if found:
            raise ValueError(f'CSPNeXt was built with channel_attention=False but the checkpoint '
                             f'has channel attention weights ({found[0]}, ... {len(found)} '
                             f'tensors): build it with channel_attention=True')

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, N + 2)`` for layer-wise lr decay: 0 the stem, ``i`` ``stage{i}``, the
        last depth anything else (a head); the groups of ``frozen_stages``."""
        return self._stage_depth(strip_prefix(param_name, prefix))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(N, in_channels, H, W)`` -> one map per ``out_indices`` entry, in that order."""
        return CSPStagesMixin.forward(self, x)
