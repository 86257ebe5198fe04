"""Feature Pyramid Network (Lin et al., 2017), argument- and checkpoint-compatible with mmdet's.

Parameter names are mmdet's (``lateral_convs.{i}.conv.weight``, ``fpn_convs.{i}.conv.weight``),
so a detector checkpoint's ``neck.*`` keys load into this module and the other way round.

``in_channels='auto'`` defers the channel list to whoever builds the FPN on top of a backbone
(:class:`~mmbackbones.models.necks.BackboneWithNeck`, ``build_backbone(cfg, neck=...)``): they
call :func:`resolve_auto_in_channels` with the backbone's ``out_channels``.

Shapes: inputs are ``len(in_channels)`` maps ``(N, C_i, H/s_i, W/s_i)``; outputs are ``num_outs``
maps ``(N, out_channels, H/s, W/s)``, the strides of the used inputs followed by extra levels
that each halve the previous one.
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from ..layers.mmcv_bricks import ConvModule
from mmengine.model import BaseModule
from torch import nn

from ...registry import MODELS
from ...utils.validation import (accepts_config_containers, check_choice, check_non_negative_int,
                                 check_positive_int, checks_keywords)
from ..init_report import InitReportMixin
from .spatial import SPATIAL_FIX

AUTO = 'auto'
POOLED_HINT = ', '.join(f'{k}: {v}' for k, v in list(SPATIAL_FIX.items())[:2])
EXTRA_CONV_SOURCES = ('on_input', 'on_lateral', 'on_output')


def resolve_auto_in_channels(neck_cfg: dict, backbone_channels: Sequence[int]) -> dict:
    """A copy of ``neck_cfg`` with ``in_channels='auto'`` replaced by ``list(backbone_channels)``.

    Works for any neck config that takes the backbone's channel list as ``in_channels`` (ours, or
    mmdet's/mmseg's ``FPN`` through a scoped type). Explicit values are checked against the
    backbone so a stale hand-edited list fails at build time instead of in the first forward.
    """
    cfg = copy.deepcopy(dict(neck_cfg))
    channels = [int(c) for c in backbone_channels]
    if not channels:
        raise ValueError('cannot resolve in_channels="auto": the backbone reports no '
                         'out_channels')
    value = cfg.get('in_channels', AUTO)
    if isinstance(value, str):
        check_choice('neck in_channels', value, (AUTO,))
        cfg['in_channels'] = channels
    elif list(value) != channels:
        raise ValueError(f'neck in_channels={list(value)} does not match the backbone '
                         f'out_channels={channels}; write in_channels="auto" to take them from '
                         f'the backbone')
    return cfg


def _check_in_channels(in_channels) -> List[int]:
    """A non-empty list of positive ints; ``'auto'`` needs a backbone, so it is refused
    here with a message saying how to build one."""
    if isinstance(in_channels, str):
        check_choice('in_channels', in_channels, (AUTO,))
        raise ValueError(
            'FPN got in_channels="auto" but no backbone to take the channels from: build it '
            'with a backbone (BackboneWithNeck(backbone=..., neck=dict(type="FPN", '
            'in_channels="auto", ...)) or build_backbone(cfg, neck=...)), or pass the list '
            '(`mmbackbones info CONFIG --neck mmdet` prints it)')
    if not isinstance(in_channels, (list, tuple)) or not in_channels:
        raise TypeError(f'in_channels must be a non-empty list of ints or "auto", got '
                        f'{in_channels!r}')
    for c in in_channels:
        check_positive_int('in_channels[i]', c)
    return [int(c) for c in in_channels]


@MODELS.register_module()
class FPN(InitReportMixin, BaseModule):
    """Feature Pyramid Network.

    Args:
        in_channels: channels of each backbone output, or ``'auto'`` (see module docstring).
        out_channels: channels of every pyramid level.
        num_outs: number of pyramid levels returned (used inputs plus extra levels).
        start_level: index of the first backbone output used.
        end_level: index of the last backbone output used (inclusive); ``-1`` means the last.
            With an explicit ``end_level`` no extra level may be added (``num_outs`` must equal
            the number of used inputs), as in mmdet.
        add_extra_convs: ``False`` adds extra levels by stride-2 max pooling; ``True`` (same as
            ``'on_input'``), ``'on_input'``, ``'on_lateral'`` or ``'on_output'`` adds stride-2 3x3
            convolutions fed from the last used input, lateral or output.
        relu_before_extra_convs: apply ReLU before every extra conv after the first.
        no_norm_on_lateral: build the 1x1 lateral convs without ``norm_cfg``.
        conv_cfg, norm_cfg, act_cfg: mmcv ``ConvModule`` configs.
        upsample_cfg: keyword arguments of ``F.interpolate`` for the top-down path; without
            ``scale_factor`` the coarser map is resized to the finer map's size.
    """

    @checks_keywords
    @accepts_config_containers
    def __init__(self,
                 in_channels: Union[str, Sequence[int]],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_cfg: Optional[dict] = None,
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = _check_in_channels(in_channels)
        self.out_channels = check_positive_int('out_channels', out_channels)
        self.num_ins = len(self.in_channels)
        self.num_outs = check_positive_int('num_outs', num_outs)
        self.start_level = check_non_negative_int('start_level', start_level)
        if self.start_level >= self.num_ins:
            raise ValueError(f'start_level={start_level} must be < len(in_channels)='
                             f'{self.num_ins}')
        self.backbone_end_level = self._check_end_level(end_level, num_outs)
        self.end_level = end_level

        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        elif add_extra_convs is not False:
            check_choice('add_extra_convs', add_extra_convs, (False, True) + EXTRA_CONV_SOURCES)
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = bool(relu_before_extra_convs)
        self.no_norm_on_lateral = bool(no_norm_on_lateral)
        self.upsample_cfg = dict(mode='nearest') if upsample_cfg is None else dict(upsample_cfg)

        self._make_convs(conv_cfg, norm_cfg, act_cfg)

    def _check_end_level(self, end_level, num_outs: int) -> int:
        """mmdet's ``end_level``: ``-1`` (or the last input) uses every input from
        ``start_level`` on and allows extra levels; otherwise exactly those inputs. Returns the
        index after the last input used."""
        if not isinstance(end_level, int) or isinstance(end_level, bool):
            raise TypeError(f'end_level must be an int, got {end_level!r}')
        if end_level == -1 or end_level == self.num_ins - 1:
            # Every input from start_level on is used; extra levels may follow.
            backbone_end_level = self.num_ins
            if num_outs < self.num_ins - self.start_level:
                raise ValueError(
                    f'num_outs={num_outs} is smaller than the {self.num_ins - self.start_level} '
                    f'inputs used (in_channels={self.in_channels}, start_level={self.start_level})')
        else:
            if not self.start_level <= end_level < self.num_ins:
                raise ValueError(f'end_level must be -1 or in {self.start_level}..'
                                 f'{self.num_ins - 1} (start_level..len(in_channels)-1), got '
                                 f'{end_level}')
            backbone_end_level = end_level + 1
            if num_outs != end_level - self.start_level + 1:
                raise ValueError(f'with end_level={end_level}, num_outs must be '
                                 f'{end_level - self.start_level + 1} (the inputs used), got '
                                 f'{num_outs}')
        return backbone_end_level

    def _make_convs(self, conv_cfg, norm_cfg, act_cfg) -> None:
        """1x1 lateral and 3x3 output convs per input used, then the extra stride-2 levels."""
        out_channels = self.out_channels
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(self.start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(
                self.in_channels[i], out_channels, 1, conv_cfg=conv_cfg,
                norm_cfg=None if self.no_norm_on_lateral else norm_cfg, act_cfg=act_cfg,
                inplace=False))
            self.fpn_convs.append(ConvModule(
                out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                act_cfg=act_cfg, inplace=False))

        self.num_extra = self.num_outs - (self.backbone_end_level - self.start_level)
        if self.add_extra_convs:
            for k in range(self.num_extra):
                if k == 0 and self.add_extra_convs == 'on_input':
                    extra_in = self.in_channels[self.backbone_end_level - 1]
                else:
                    extra_in = out_channels
                self.fpn_convs.append(ConvModule(
                    extra_in, out_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))

    def out_strides(self, in_strides: Sequence[int]) -> Tuple[int, ...]:
        """Strides of the outputs given the strides of the inputs (one per ``in_channels``)."""
        if len(in_strides) != self.num_ins:
            raise ValueError(f'got {len(in_strides)} input strides for {self.num_ins} inputs')
        strides = [int(s) for s in in_strides[self.start_level:self.backbone_end_level]]
        for _ in range(self.num_extra):
            strides.append(strides[-1] * 2)
        return tuple(strides)

    def _upsample_add(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        if 'scale_factor' in self.upsample_cfg:
            return fine + F.interpolate(coarse, **self.upsample_cfg)
        return fine + F.interpolate(coarse, size=fine.shape[2:], **self.upsample_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'FPN was built for {self.num_ins} inputs (in_channels='
                             f'{self.in_channels}) but got {len(inputs)}')
        for i, x in enumerate(inputs):
            if x.dim() != 4:
                raise ValueError(f'FPN input {i} has shape {tuple(x.shape)}: a pooled vector or '
                                 f'tokens, not a feature map (N, C, H, W); build the backbone '
                                 f'with feature-map outputs ({POOLED_HINT})')
        used = inputs[self.start_level:self.backbone_end_level]
        laterals: List[torch.Tensor] = [conv(x) for conv, x in zip(self.lateral_convs, used)]
        # Top-down: each coarser lateral is upsampled into the next finer one.
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = self._upsample_add(laterals[i], laterals[i - 1])
        outs = [self.fpn_convs[i](lat) for i, lat in enumerate(laterals)]

        if self.num_extra:
            if not self.add_extra_convs:
                for _ in range(self.num_extra):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                first = len(laterals)
                if self.add_extra_convs == 'on_input':
                    source = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == 'on_lateral':
                    source = laterals[-1]
                else:
                    source = outs[-1]
                outs.append(self.fpn_convs[first](source))
                for i in range(first + 1, first + self.num_extra):
                    prev = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](prev))
        return tuple(outs)
