"""A backbone and a neck built together, so the neck's ``in_channels`` come from the backbone.

``BackboneWithNeck`` is itself a backbone (the same contract: tuple outputs, ``out_channels``,
``out_strides``, ``out_names``, ``output_shape()``), so it drops into an mmdet/mmseg config as the
``backbone`` of a detector whose own ``neck`` is ``None``, or into detectron2 through the adapter.
Output names follow detectron2's FPN: ``p{log2(stride)}`` (``p2``..``p6``).
"""
import math
from typing import Tuple, Union

import torch
from torch import nn

from ...registry import MODELS, cfg_as_dict
from ..base import BaseBackbone
from .fpn import resolve_auto_in_channels
from .spatial import check_spatial_outputs


def _cfg_dict(cfg, name):
    return cfg_as_dict(cfg, name, 'a dict/ConfigDict with a "type" key or a built module')


def _build(cfg: dict):
    # Unscoped types mean ours, even while mmdet/mmseg is the default scope (as build_backbone).
    cfg = dict(cfg)
    if 'type' not in cfg:
        raise KeyError(f'config must contain "type", got keys {sorted(cfg)}')
    if isinstance(cfg['type'], str) and '.' not in cfg['type']:
        cfg['type'] = f'{MODELS.scope}.{cfg["type"]}'
    return MODELS.build(cfg)


def _level_names(strides) -> Tuple[str, ...]:
    names = []
    for s in strides:
        level = math.log2(s) if s and s > 0 else float('nan')
        names.append(f'p{int(level)}' if level == int(level) else f'p_s{s}')
    if len(set(names)) != len(names):  # e.g. a dilated backbone: equal strides
        names = [f'p{i}' for i in range(len(strides))]
    return tuple(names)


@MODELS.register_module()
class BackboneWithNeck(BaseBackbone):
    """``neck(backbone(x))`` with ``neck.in_channels='auto'`` resolved from the backbone.

    Args:
        backbone: a backbone config (``dict(type='ResNet', ...)``) or a built backbone (anything
            with ``out_channels``; ``out_strides`` is needed for ``output_shape()``).
        neck: a neck config; ``in_channels`` may be ``'auto'`` (or left out). Any neck whose
            ``in_channels`` is the backbone's channel list works (our ``FPN``, or
            ``'mmdet.FPN'`` when mmdet is installed).
        init_cfg: mmengine init config of the pair (the parts keep their own ``init_cfg``).

    Shapes: ``(N, C, H, W)`` in, the neck's outputs out (a tuple).
    """

    def __init__(self, backbone: Union[dict, nn.Module], neck: dict, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(backbone, nn.Module):
            self.backbone = backbone
        else:
            self.backbone = _build(_cfg_dict(backbone, 'backbone'))
        channels = getattr(self.backbone, 'out_channels', None)
        if not isinstance(channels, (list, tuple)) or not channels:
            raise TypeError(f'backbone {type(self.backbone).__name__} does not report '
                            f'out_channels (a tuple, one per output), so the neck in_channels '
                            f'cannot be resolved; got {channels!r}')
        neck_cfg = _cfg_dict(neck, 'neck')
        check_spatial_outputs(self.backbone, f'neck {neck_cfg.get("type")!r}')
        neck_cfg = resolve_auto_in_channels(neck_cfg, channels)
        self.neck = _build(neck_cfg)
        self.in_channels = getattr(self.backbone, 'in_channels', None)

        neck_out = getattr(self.neck, 'out_channels', None)
        num_outs = getattr(self.neck, 'num_outs', None)
        in_strides = tuple(getattr(self.backbone, 'out_strides', ()) or ())
        if isinstance(neck_out, int) and num_outs:
            strides = (None,) * num_outs
            if len(in_strides) == len(channels):
                if callable(getattr(self.neck, 'out_strides', None)):
                    strides = self.neck.out_strides(in_strides)
                elif all(hasattr(self.neck, a) for a in ('start_level', 'backbone_end_level')):
                    # mmdet/mmseg FPN-like necks: the used inputs, then levels halving each time
                    used = list(in_strides[self.neck.start_level:self.neck.backbone_end_level])
                    while used and len(used) < num_outs:
                        used.append(used[-1] * 2)
                    if len(used) == num_outs:
                        strides = tuple(used)
            names = (_level_names(strides) if None not in strides
                     else tuple(f'p{i}' for i in range(num_outs)))
            self._set_outputs((neck_out,) * num_outs, strides, names)
        # frozen_stages/norm_eval are the backbone's own business (its train() handles them).
        self.frozen_stages = -1
        self.norm_eval = False

    @property
    def size_divisibility(self) -> int:
        # Pyramids built by top-down upsampling need sides divisible by the coarsest stride,
        # or the upsampled map and the lateral differ by one pixel.
        own = getattr(self.backbone, 'size_divisibility', 0) or 0
        strides = [s for s in self.out_strides if s]
        coarsest = max(strides) if strides else 0
        return max(own, coarsest)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        return tuple(self.neck(self.backbone(x)))
