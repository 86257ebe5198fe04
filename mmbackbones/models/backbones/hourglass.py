"""Stacked Hourglass networks (https://arxiv.org/abs/1603.06937), the backbone of CornerNet and
CentripetalNet: mmdet 3.3's ``HourglassNet``.

A stem (7x7 stride-2 conv, one stride-2 residual block: stride 4), then ``num_stacks``
hourglass modules. Each module is recursive: ``up1`` (residual blocks at this resolution) plus
the upsampled result of ``low1`` (stride-2 blocks), ``low2`` (the next, smaller hourglass, or
blocks at the bottom) and ``low3``. After each module an ``out_convs`` 3x3 conv gives that
stack's output; between stacks ``conv1x1s`` (of the stack's input) and ``remap_convs`` (of its
output) are summed and go through one residual block of ``inters``. Every output has
``feat_channel`` channels at stride 4 (CornerNet supervises each stack).

Parameter names and the forward are mmdet's, including one of its quirks: ``norm_cfg`` reaches
the stem, ``inters``, ``conv1x1s``, ``out_convs`` and ``remap_convs`` but not the hourglass
modules, which always use ``BN`` (mmdet builds them without passing it on).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_positive_int,
                                 check_size_limit, normalize_out_indices, to_plain)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.conv_norm_act import ConvNormAct
from ..layers.norm import check_norm_cfg
from ..layers.resnet_blocks import BasicBlock, make_downsample
from ..layers.unbuilt import declare_unbuilt_entries

HOURGLASS_NORM = dict(type='BN', requires_grad=True)  # what mmdet's hourglass modules use


def res_layer(in_channels: int, out_channels: int, num_blocks: int, stride: int = 1,
              norm_cfg: dict = HOURGLASS_NORM, downsample_first: bool = True,
              with_cp: bool = False) -> nn.Sequential:
    """mmdet's ``ResLayer`` of ``BasicBlock`` s: the block that changes the shape (with the
    ``downsample`` branch) first, or last with ``downsample_first=False``; the others keep
    ``in_channels`` (before) or ``out_channels`` (after). ``num_blocks`` may be 0."""
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = make_downsample(in_channels, out_channels, stride, norm_cfg=norm_cfg)

    def block(cin, cout, s=1, down=None):
        return BasicBlock(cin, cout, stride=s, downsample=down, norm_cfg=norm_cfg,
                          with_cp=with_cp)
    if num_blocks == 0:
        return nn.Sequential()
    if downsample_first:
        blocks = [block(in_channels, out_channels, stride, downsample)] + [
            block(out_channels, out_channels) for _ in range(num_blocks - 1)]
    else:
        blocks = [block(in_channels, in_channels) for _ in range(num_blocks - 1)] + [
            block(in_channels, out_channels, stride, downsample)]
    return nn.Sequential(*blocks)


class HourglassModule(nn.Module):
    """One hourglass of ``depth`` halvings: ``up1 + upsample(low3(low2(low1(x))))``, ``low2``
    the hourglass of ``depth - 1`` on ``stage_channels[1:]`` (blocks at the bottom).
    The upsampling is nearest to ``up1``'s size (odd sides included), as mmdet's default
    ``upsample_cfg``; a ``scale_factor`` in ``upsample_cfg`` is used instead, as there."""

    def __init__(self, depth: int, stage_channels: Sequence[int], stage_blocks: Sequence[int],
                 norm_cfg: dict = HOURGLASS_NORM, upsample_cfg: dict = dict(mode='nearest'),
                 with_cp: bool = False):
        super().__init__()
        self.depth, self.upsample_cfg = depth, dict(upsample_cfg)
        cur, nxt = stage_channels[0], stage_channels[1]
        kw = dict(norm_cfg=norm_cfg, with_cp=with_cp)
        self.up1 = res_layer(cur, cur, stage_blocks[0], **kw)
        self.low1 = res_layer(cur, nxt, stage_blocks[0], stride=2, **kw)
        if depth > 1:  # mmdet passes neither norm_cfg nor upsample_cfg down
            self.low2 = HourglassModule(depth - 1, stage_channels[1:], stage_blocks[1:],
                                        with_cp=with_cp)
        else:
            self.low2 = res_layer(nxt, nxt, stage_blocks[1], **kw)
        self.low3 = res_layer(nxt, cur, stage_blocks[0], downsample_first=False, **kw)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`ScriptableHourglassModule`, this forward
        over the same modules."""
        return ScriptableHourglassModule(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(x)))
        if 'scale_factor' in self.upsample_cfg:
            return up1 + F.interpolate(low, **self.upsample_cfg)
        return up1 + F.interpolate(low, size=up1.shape[2:], **self.upsample_cfg)


def _check_int_list(name: str, value, limit: int) -> Tuple[int, ...]:
    value = to_plain(value)
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f'{name} must be a non-empty list/tuple of ints, got {value!r}')
    return tuple(check_size_limit(f'each of {name}', v, limit) for v in value)


@MODELS.register_module()
class HourglassNet(BaseBackbone):
    """Stacked Hourglass backbone, mmdet 3.3's signature and defaults (Hourglass-104).

    Args:
        downsample_times (int): halvings inside one hourglass module (5).
        num_stacks (int): hourglass modules stacked: 1 for Hourglass-52, 2 for Hourglass-104.
        stage_channels (Sequence[int]): channels at each level of a module (more entries than
            ``downsample_times``).
        stage_blocks (Sequence[int]): residual blocks at each level (as many as channels).
        feat_channel (int): channels of every output.
        norm_cfg (dict): norm of the stem and the layers between stacks (see the module
            docstring: not of the hourglass modules, as in mmdet).
        init_cfg: mmengine init config (mmdet refuses one; here a Pretrained entry is allowed).
            Without a checkpoint, ``init_weights()`` resets every conv to PyTorch's default
            init after ``init_cfg``, as mmdet does.
        out_indices (int | Sequence[int], optional): stacks to return (extra; default all,
            as mmdet). Stacks after the last one asked for are not built.
        frozen_stages (int): extra: -1 none, 0 the stem, k also stacks 1..k (each with the
            layers leading to the next stack).
        norm_eval (bool): extra: BatchNorms in eval mode during training.
        with_cp (bool): extra: gradient checkpointing of every residual block.

    Input ``(N, 3, H, W)``; every output ``(N, feat_channel, ~H / 4, ~W / 4)``, named
    ``stack{i+1}``.
    """

    arch_settings = {'hourglass52': dict(num_stacks=1), 'hourglass104': dict(num_stacks=2)}

    def __init__(self, downsample_times: int = 5, num_stacks: int = 2,
                 stage_channels: Sequence[int] = (256, 256, 384, 384, 384, 512),
                 stage_blocks: Sequence[int] = (2, 2, 2, 2, 2, 4), feat_channel: int = 256,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), init_cfg=None,
                 out_indices=None, frozen_stages: int = -1, norm_eval: bool = False,
                 with_cp: bool = False):
        super().__init__(init_cfg=init_cfg)
        self.downsample_times = check_positive_int('downsample_times', downsample_times)
        self.num_stacks = self.num_stages = check_size_limit('num_stacks', num_stacks, 64)
        self.stage_channels = _check_int_list('stage_channels', stage_channels, MAX_WIDTH)
        self.stage_blocks = _check_int_list('stage_blocks', stage_blocks, MAX_BLOCKS)
        if len(self.stage_channels) != len(self.stage_blocks):
            raise ValueError(f'stage_channels ({len(self.stage_channels)} entries) and '
                             f'stage_blocks ({len(self.stage_blocks)}) must have one entry per '
                             f'level')
        if len(self.stage_channels) <= self.downsample_times:
            raise ValueError(f'stage_channels/stage_blocks need more than downsample_times='
                             f'{self.downsample_times} entries (one per level and the bottom), '
                             f'got {len(self.stage_channels)}')
        self.feat_channel = check_size_limit('feat_channel', feat_channel, MAX_WIDTH)
        self.norm_cfg = check_norm_cfg(norm_cfg)
        check_bool('norm_eval', norm_eval)
        self.with_cp = check_bool('with_cp', with_cp)
        self.norm_eval, self.in_channels = norm_eval, 3
        self.out_indices = normalize_out_indices(
            tuple(range(num_stacks)) if out_indices is None else out_indices, num_stacks)
        self.frozen_stages = frozen_stages
        last = max(self.out_indices)

        cur, norm = self.stage_channels[0], self.norm_cfg
        self.stem = nn.Sequential(
            ConvNormAct(3, cur // 2, 7, stride=2, padding=3, norm_cfg=norm),
            res_layer(cur // 2, cur, 1, stride=2, norm_cfg=norm, with_cp=with_cp))
        self.hourglass_modules = nn.ModuleList(
            HourglassModule(self.downsample_times, self.stage_channels, self.stage_blocks,
                            with_cp=with_cp) for _ in range(last + 1))
        self.inters = res_layer(cur, cur, last, norm_cfg=norm, with_cp=with_cp)
        self.conv1x1s = nn.ModuleList(ConvNormAct(cur, cur, 1, norm_cfg=norm, act_cfg=None)
                                      for _ in range(last))
        self.out_convs = nn.ModuleList(ConvNormAct(cur, self.feat_channel, 3, norm_cfg=norm)
                                       for _ in range(last + 1))
        self.remap_convs = nn.ModuleList(
            ConvNormAct(self.feat_channel, cur, 1, norm_cfg=norm, act_cfg=None)
            for _ in range(last))
        self.relu = nn.ReLU(inplace=True)
        full = max(num_stacks - 1, 1)  # mmdet's ResLayer has >= 1 block: an unused inters.0
        declare_unbuilt_entries(self, {'hourglass_modules': (last + 1, num_stacks),
                                    'out_convs': (last + 1, num_stacks), 'inters': (last, full),
                                    'conv1x1s': (last, full), 'remap_convs': (last, full)})
        n = len(self.out_indices)
        self._set_outputs([self.feat_channel] * n, [4] * n,
                          [f'stack{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self) -> List[nn.Module]:
        groups = [self.stem]
        for i in range(len(self.hourglass_modules)):
            members = [self.hourglass_modules[i], self.out_convs[i]]
            if i < len(self.conv1x1s):  # the layers leading to the next stack
                members += [self.conv1x1s[i], self.remap_convs[i], self.inters[i]]
            groups.append(nn.ModuleList(members))
        return groups

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_stacks + 2)``: 0 the stem, ``i + 1`` stack ``i`` (its hourglass, its
        output conv and the layers leading to the next stack), the last anything else."""
        total = self.num_stacks + 2
        name = strip_prefix(param_name, prefix)
        parts = (name or '').split('.')
        if parts[0] == 'stem':
            return 0, total
        if parts[0] in ('hourglass_modules', 'out_convs', 'inters', 'conv1x1s',
                        'remap_convs') and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1]) + 1, total
        return total - 1, total

    def init_weights(self):
        super().init_weights()
        if not self.loads_pretrained():  # mmdet: convs back to PyTorch's default init
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    m.reset_parameters()

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`ScriptableHourglassNet`, this forward
        over the same modules, a list of the same maps."""
        return ScriptableHourglassNet(self)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        inter = self.stem(x)
        outs = []
        for i in range(len(self.hourglass_modules)):
            out = self.out_convs[i](self.hourglass_modules[i](inter))
            outs.append(out)
            if i < len(self.conv1x1s):
                inter = self.inters[i](self.relu(self.conv1x1s[i](inter)
                                                 + self.remap_convs[i](out)))
        return tuple(outs[i] for i in self.out_indices)


class ScriptableHourglassModule(nn.Module):
    """:class:`HourglassModule`'s forward in TorchScript's subset, over the same modules (the
    ``upsample_cfg`` keys ``mode``, ``scale_factor`` and ``align_corners``)."""

    scale_factor: Optional[float]
    align_corners: Optional[bool]

    def __init__(self, module: HourglassModule):
        super().__init__()
        from ..layers.scripting import not_scriptable
        cfg = dict(module.upsample_cfg)
        extra = set(cfg) - {'mode', 'scale_factor', 'align_corners'}
        if extra or isinstance(cfg.get('scale_factor'), (list, tuple)):
            raise not_scriptable('HourglassModule', f'upsample_cfg={cfg!r} (mode, a single '
                                 f'scale_factor and align_corners are scripted)')
        self.up1, self.low1, self.low2, self.low3 = (module.up1, module.low1, module.low2,
                                                     module.low3)
        self.mode: str = cfg.get('mode', 'nearest')
        scale = cfg.get('scale_factor')
        self.scale_factor = None if scale is None else float(scale)
        self.align_corners = cfg.get('align_corners')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(x)))
        scale = self.scale_factor
        if scale is not None:
            return up1 + F.interpolate(low, scale_factor=scale, mode=self.mode,
                                       align_corners=self.align_corners)
        return up1 + F.interpolate(low, size=[up1.shape[2], up1.shape[3]], mode=self.mode,
                                   align_corners=self.align_corners)


class _StackLink(nn.Module):
    """The input of the next stack: ``inter(relu(conv1x1(inter) + remap(out)))``."""

    def __init__(self, conv1x1: nn.Module, remap: nn.Module, inter: nn.Module, relu: nn.Module):
        super().__init__()
        self.conv1x1, self.remap, self.inter, self.relu = conv1x1, remap, inter, relu

    def forward(self, inter: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self.inter(self.relu(self.conv1x1(inter) + self.remap(out)))


class _LastStack(nn.Module):
    def forward(self, inter: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return inter


class ScriptableHourglassNet(nn.Module):
    """:class:`HourglassNet`'s forward in TorchScript's subset over the same modules: a list
    of the ``out_indices`` maps."""

    def __init__(self, model: HourglassNet):
        super().__init__()
        self.stem = model.stem
        self.hourglass_modules = model.hourglass_modules
        self.out_convs = model.out_convs
        links = [_StackLink(model.conv1x1s[i], model.remap_convs[i], model.inters[i],
                            model.relu) for i in range(len(model.conv1x1s))]
        links += [_LastStack()] * (len(model.hourglass_modules) - len(links))
        self.links = nn.ModuleList(links)
        self.out_indices: List[int] = [int(i) for i in model.out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        inter = self.stem(x)
        outs: List[torch.Tensor] = []
        for hourglass, out_conv, link in zip(self.hourglass_modules, self.out_convs,
                                             self.links):
            out = out_conv(hourglass(inter))
            outs.append(out)
            inter = link(inter, out)
        return [outs[i] for i in self.out_indices]


class MMDetHourglassNet(HourglassNet):
    """mmdet 3.3's ``HourglassNet``: exactly its arguments (no out_indices/frozen_stages/
    norm_eval/with_cp), every stack returned. Registered as ``mmbackbones.mmdet.HourglassNet``
    (compat/)."""

    def __init__(self, downsample_times: int = 5, num_stacks: int = 2,
                 stage_channels: Sequence[int] = (256, 256, 384, 384, 384, 512),
                 stage_blocks: Sequence[int] = (2, 2, 2, 2, 2, 4), feat_channel: int = 256,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg: Optional[dict] = None):
        super().__init__(downsample_times=downsample_times, num_stacks=num_stacks,
                         stage_channels=stage_channels, stage_blocks=stage_blocks,
                         feat_channel=feat_channel, norm_cfg=norm_cfg, init_cfg=init_cfg)
