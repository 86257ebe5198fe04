"""Res2Net's bottleneck (https://arxiv.org/abs/1904.01169): hierarchical 3x3 convs over
``scales`` channel splits.

Parameter names are mmpretrain's / mmdet's / timm's (identical inside the block): ``conv1``/
``bn1`` (to ``width * scales`` channels), ``convs.{i}``/``bns.{i}`` (``scales - 1`` 3x3 convs of
``width`` channels), ``conv3``/``bn3``, then ``downsample``. The state dict order is upstream's
(``conv1``, ``bn1``, ``conv3``, ``bn3``, ``downsample``, ``convs``, ``bns``).

The first block of a stage (``stage_type='stage'``) convolves every split on its own and
average-pools the last one (3x3, the block's stride); the others (``'normal'``) add each conv's
output to the next split. Where the first block pools its last split at stride 1 the libraries
disagree: mmpretrain and timm always pool (``stage_pool='always'``), mmdet only at stride 2
(``stage_pool='strided'``).
"""
import math
from typing import List, Optional, Sequence

import torch
from torch import nn

from ...utils.validation import check_choice, check_positive_int
from .mmcv_bricks import build_conv_layer, build_norm_layer
from .resnet_blocks import ResidualBlockBase, build_dcn_conv, check_dcn

STAGE_TYPES = ('normal', 'stage')
STAGE_POOLS = ('always', 'strided')


class Bottle2neck(ResidualBlockBase):
    """Res2Net bottleneck.

    Input ``(N, in_channels, H, W)``; output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. ``width = floor(out_channels / expansion * base_width /
    base_channels)`` channels per scale; ``scales`` >= 2. ``dcn`` (mmdet's) makes every scale conv
    deformable. ``style='caffe'`` puts the stride on ``conv1``.
    """

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, expansion: int = 4, stride: int = 1,
                 dilation: int = 1, downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch', with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True), drop_path_rate: float = 0.0,
                 scales: int = 4, base_width: int = 26, base_channels: int = 64,
                 stage_type: str = 'normal', stage_pool: str = 'always',
                 dcn: Optional[dict] = None, plugins: Optional[Sequence[dict]] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self._init_common(in_channels, out_channels, stride, dilation, downsample, style,
                          with_cp, conv_cfg, norm_cfg, act_cfg, drop_path_rate)
        check_positive_int('scales', scales)
        if scales < 2:
            raise ValueError(f'scales must be >= 2 (Res2Net with scales=1 is a ResNet), got '
                             f'{scales!r}')
        check_positive_int('base_width', base_width)
        check_positive_int('base_channels', base_channels)
        check_positive_int('expansion', expansion)
        check_choice('stage_type', stage_type, STAGE_TYPES)
        check_choice('stage_pool', stage_pool, STAGE_POOLS)
        if plugins:
            raise ValueError(f'plugins={plugins!r}: Res2Net blocks take no plugins here (mmdet '
                             f'builds them for the channels of a plain bottleneck)')
        dcn = check_dcn(dcn)
        if dcn is not None and conv_cfg is not None:
            raise ValueError(f'dcn={dcn!r} replaces the scale convs: conv_cfg must be None with '
                             f'it (as in mmdet), got conv_cfg={conv_cfg!r}')
        width = int(math.floor(out_channels // expansion * (base_width / base_channels)))
        if width < 1:
            raise ValueError(f'Res2Net width per scale floor({out_channels // expansion} * '
                             f'{base_width} / {base_channels}) is 0; raise base_width')
        self.expansion, self.scales, self.width = expansion, scales, width
        self.base_width, self.stage_type, self.stage_pool = base_width, stage_type, stage_pool
        self.mid_channels = width * scales
        self.dcn, self.with_dcn = dcn, dcn is not None
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)

        self._add_conv_norm(build_conv_layer(conv_cfg, in_channels, width * scales,
                                             kernel_size=1, stride=self.conv1_stride,
                                             bias=False), width * scales)
        norm_name, norm = build_norm_layer(norm_cfg, out_channels, postfix=3)
        self._add_step('conv3', build_conv_layer(conv_cfg, width * scales, out_channels,
                                                 kernel_size=1, bias=False), norm_name, norm)
        self._finish((), ())
        pooled = stage_type == 'stage' and (stage_pool == 'always' or self.conv2_stride != 1)
        self.pool = (nn.AvgPool2d(kernel_size=3, stride=self.conv2_stride, padding=1)
                     if pooled else None)
        conv_args = dict(kernel_size=3, stride=self.conv2_stride, padding=dilation,
                         dilation=dilation, bias=False)
        self.convs = nn.ModuleList(
            build_dcn_conv(dcn, width, width, **conv_args) if dcn is not None
            else build_conv_layer(conv_cfg, width, width, **conv_args)
            for _ in range(scales - 1))
        self.bns = nn.ModuleList(build_norm_layer(norm_cfg, width, postfix=i + 1)[1]
                                 for i in range(scales - 1))

    @property
    def norm3(self) -> nn.Module:
        return self.last_norm

    def after_fuse(self) -> None:
        self._folded = False  # the scale convs keep this block's own forward

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`ScriptableBottle2neck` (the same modules;
        drop path is refused, naming why)."""
        from .scripting import keep_source
        return keep_source(ScriptableBottle2neck(self), self)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        (conv1, norm1, _), (conv3, norm3, _) = self._steps
        out = self.relu(modules[norm1](modules[conv1](x)))
        splits = torch.split(out, self.width, 1)
        outs = []
        stage = self.stage_type == 'stage'
        sp = splits[0]
        for i, (conv, norm) in enumerate(zip(self.convs, self.bns)):
            sp = splits[i] if stage or i == 0 else sp + splits[i]
            sp = self.relu(norm(conv(sp.contiguous())))
            outs.append(sp)
        outs.append(splits[-1] if self.pool is None else self.pool(splits[-1]))
        out = modules[norm3](modules[conv3](torch.cat(outs, 1)))
        shortcut = modules.get(self._shortcut_name)
        identity = x if shortcut is None else shortcut(x)
        out = self.drop_path(out)
        out += identity
        return out


class ScriptableBottle2neck(nn.Module):
    """:class:`Bottle2neck`'s forward in TorchScript's subset, over the same modules."""

    def __init__(self, block: Bottle2neck):
        super().__init__()
        from .scripting import not_scriptable
        if not isinstance(block.drop_path, nn.Identity):
            raise not_scriptable(type(block).__name__, 'drop path (drop_path_rate > 0)')
        modules = block._modules
        (conv1, norm1, _), (conv3, norm3, _) = block._steps
        self.conv1, self.norm1 = modules[conv1], modules[norm1]
        self.conv3, self.norm3 = modules[conv3], modules[norm3]
        self.convs, self.bns = block.convs, block.bns
        self.pool = block.pool if block.pool is not None else nn.Identity()
        self.shortcut = modules.get(block._shortcut_name)
        self.relu = block.relu
        self.width: int = int(block.width)
        self.stage: bool = block.stage_type == 'stage'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        splits = torch.split(out, self.width, 1)
        outs: List[torch.Tensor] = []
        sp = splits[0]
        for i, (conv, norm) in enumerate(zip(self.convs, self.bns)):
            sp = splits[i] if self.stage or i == 0 else sp + splits[i]
            sp = self.relu(norm(conv(sp.contiguous())))
            outs.append(sp)
        outs.append(self.pool(splits[-1]))
        out = self.norm3(self.conv3(torch.cat(outs, 1)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        else:
            out = out + x
        return self.relu(out)


__all__ = ['Bottle2neck', 'ScriptableBottle2neck', 'STAGE_POOLS']
