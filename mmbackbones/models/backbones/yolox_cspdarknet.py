"""YOLOX's / YOLOv5's CSP-Darknet (https://arxiv.org/abs/2107.08430): mmdet 3.3's
``CSPDarknet``, registered here as ``YOLOXCSPDarknet`` (``CSPDarkNet`` is mmpretrain's
YOLOv4 network, :mod:`.cspnet`; a different structure).

A :class:`~..layers.csp_layer.Focus` stem (stride 2), then stages of a stride-2 3x3 conv,
an SPP block in the last stage, and a :class:`~..layers.csp_layer.CSPLayer` of Darknet
bottlenecks. Parameter names are mmdet's (``stem.conv.*``, ``stage{i}.{0,1,2}.*``), so an
mmdet YOLOX checkpoint loads with ``prefix='backbone'`` and ``strict=True``; timm's
``cs3darknet_focus_*`` load through :mod:`~mmbackbones.checkpoint.converters.timm_darknet`.

Differences from mmdet, documented extras: ``in_channels`` (mmdet: always 3), ``with_cp``;
stages after the last ``out_indices`` are not built; outputs come in ``out_indices`` order
(mmdet returns them in stage order; the ``mmbackbones.mmdet.CSPDarknet`` twin sorts).
"""
from typing import Sequence, Tuple

import torch

from ...registry import MODELS
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.csp_layer import (YOLO_BN, YOLO_INIT_CFG, CSPStagesMixin, Focus,
                                check_kernel_sizes)
from ..layers.norm import check_norm_cfg


@MODELS.register_module()
class YOLOXCSPDarknet(CSPStagesMixin, BaseBackbone):
    """CSP-Darknet of YOLOX/YOLOv5, mmdet 3.3's ``CSPDarknet`` signature and defaults.

    Args:
        arch (str): ``'P5'`` (4 stages, stride 32) or ``'P6'`` (5 stages, stride 64).
        deepen_factor, widen_factor (float): block-count and channel multipliers (YOLOX-s:
            0.33 / 0.5, -m 0.67 / 0.75, -l 1 / 1, -x 1.33 / 1.25, -tiny 0.33 / 0.375).
        out_indices (Sequence[int]): 0 the stem, ``i`` ``stage{i}`` (negative from the end);
            default ``(2, 3, 4)``, strides 8, 16, 32.
        frozen_stages (int): -1 nothing, 0 the stem, ``k`` the stem and ``stage1..k``
            (mmdet's meaning).
        use_depthwise (bool): depthwise separable 3x3 convs (YOLOX-nano).
        arch_ovewrite (list, optional): rows ``[in, out, num_blocks, add_identity, use_spp]``
            replacing the arch table (mmdet's spelling).
        spp_kernal_sizes (Sequence[int]): the SPP max-pool kernels (mmdet's spelling).
        conv_cfg, norm_cfg, act_cfg (dict): layer configs (BN momentum 0.03, eps 1e-3; Swish).
        norm_eval (bool): BatchNorms in eval mode while training.
        init_cfg: mmdet's default, Kaiming-uniform convs.
        in_channels (int): image channels (extra; mmdet fixes 3).
        with_cp (bool): gradient checkpointing of every CSP block (extra).

    Input ``(N, in_channels, H, W)`` with even sides; output ``i`` has stride ``2 ** (i + 1)``.
    """

    arch_settings = {
        'P5': [[64, 128, 3, True, False], [128, 256, 9, True, False],
               [256, 512, 9, True, False], [512, 1024, 3, False, True]],
        'P6': [[64, 128, 3, True, False], [128, 256, 9, True, False],
               [256, 512, 9, True, False], [512, 768, 3, True, False],
               [768, 1024, 3, False, True]]
    }

    def __init__(self, arch: str = 'P5', deepen_factor: float = 1.0, widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4), frozen_stages: int = -1,
                 use_depthwise: bool = False, arch_ovewrite=None,
                 spp_kernal_sizes: Sequence[int] = (5, 9, 13), conv_cfg=None,
                 norm_cfg: dict = YOLO_BN, act_cfg: dict = dict(type='Swish'),
                 norm_eval: bool = False, init_cfg=YOLO_INIT_CFG, in_channels: int = 3,
                 with_cp: bool = False):
        super().__init__(init_cfg=dict(init_cfg) if init_cfg is YOLO_INIT_CFG else init_cfg)
        _, rows = self._check_common(arch, arch_ovewrite, deepen_factor, widen_factor,
                                     out_indices, frozen_stages, use_depthwise, norm_eval,
                                     with_cp, in_channels)
        spp = check_kernel_sizes('spp_kernal_sizes', spp_kernal_sizes)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=check_norm_cfg(norm_cfg), act_cfg=act_cfg)
        self.stem = Focus(self.in_channels, rows[0][0], kernel_size=3, **cfg)
        self._build_stages(rows, use_depthwise, spp, dict(with_cp=with_cp), cfg)
        self._freeze_stages()

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, N + 2)`` for layer-wise lr decay: 0 the stem, ``i`` ``stage{i}``, the
        last depth anything else (a head); the groups of ``frozen_stages``."""
        return self._stage_depth(strip_prefix(param_name, prefix))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(N, in_channels, H, W)`` -> one map per ``out_indices`` entry, in that order."""
        return CSPStagesMixin.forward(self, x)
