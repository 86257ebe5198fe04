"""ResNeSt's split-attention conv and bottleneck (https://arxiv.org/abs/2004.08955).

Parameter names are mmpretrain's / mmdet's / mmseg's / timm's (they agree inside the block):
``conv2.conv`` (the grouped 3x3 conv producing ``radix`` splits), ``conv2.bn0``, ``conv2.fc1``,
``conv2.bn1``, ``conv2.fc2`` (the attention MLP, 1x1 convs with bias), then ``conv3``/``bn3``.
The norm names come from mmcv's ``build_norm_layer`` (``bn0``/``bn1`` for BN, ``gn0``/... for
GN), as upstream.

:class:`ResNeStBottleneck` is a :class:`~.resnet_blocks.ResidualBlockBase`: its steps are
``conv1``+``bn1``, the split-attention conv (which applies its own norms and activation), an
optional average pool (``avg_down_stride``: the block's stride taken by a 3x3 average pool after
the split-attention conv) and ``conv3``+``bn3``; mmdet's ``dcn`` makes the split-attention conv
deformable, mmdet's plugins run where mmdet runs them.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.validation import check_bool, check_positive_int
from .mmcv_bricks import build_conv_layer, build_norm_layer
from .resnet_blocks import ResidualBlockBase, _norm_at, build_dcn_conv, check_dcn


class RSoftmax(nn.Module):
    """Softmax over the ``radix`` splits of each group (sigmoid when ``radix == 1``)."""

    def __init__(self, radix: int, groups: int):
        super().__init__()
        self.radix, self.groups = radix, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # explicit sizes: an empty batch has no -1 to infer
        batch, channels = x.shape[0], x.shape[1]
        if self.radix > 1:
            x = x.view(batch, self.groups, self.radix, channels // (self.groups * self.radix))
            return F.softmax(x.transpose(1, 2), dim=1).reshape(batch, channels)
        return torch.sigmoid(x)


class SplitAttentionConv2d(nn.Module):
    """A ``kernel_size`` conv producing ``radix`` splits of ``channels`` channels (``groups *
    radix`` groups), weighted by an attention computed from their pooled sum.

    Input ``(N, in_channels, H, W)``, output ``(N, channels, H', W')`` (``H'`` as the conv's).
    The attention MLP's hidden width is ``max(in_channels * radix // reduction_factor, 32)``.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, radix: int = 2,
                 reduction_factor: int = 4, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), dcn: Optional[dict] = None):
        super().__init__()
        check_positive_int('radix', radix)
        check_positive_int('reduction_factor', reduction_factor)
        check_positive_int('groups', groups)
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix, self.groups, self.channels = radix, groups, channels
        conv_args = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups * radix, bias=False)
        dcn = check_dcn(dcn)
        if dcn is not None:
            if conv_cfg is not None:
                raise ValueError(f'dcn={dcn!r} replaces the split-attention conv: conv_cfg must '
                                 f'be None with it (as in mmdet), got conv_cfg={conv_cfg!r}')
            self.conv = build_dcn_conv(dcn, in_channels, channels * radix, **conv_args)
        else:
            self.conv = build_conv_layer(conv_cfg, in_channels, channels * radix, **conv_args)
        self.norm0_name, norm0 = build_norm_layer(norm_cfg, channels * radix, postfix=0)
        self.add_module(self.norm0_name, norm0)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter_channels, 1, groups=groups)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, inter_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.fc2 = nn.Conv2d(inter_channels, channels * radix, 1, groups=groups)
        self.rsoftmax = RSoftmax(radix, groups)

    @property
    def norm0(self) -> nn.Module:
        return self._modules[self.norm0_name]

    @property
    def norm1(self) -> nn.Module:
        return self._modules[self.norm1_name]

    def conv_norm_pairs(self):
        return [('conv', self.norm0_name), ('fc1', self.norm1_name)]

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`ScriptableSplitAttention`, this forward
        over the same modules."""
        from .scripting import keep_source
        return keep_source(ScriptableSplitAttention(self), self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        x = self.relu(modules[self.norm0_name](self.conv(x)))
        batch, channels = x.size(0), self.channels  # explicit sizes, for empty batches too
        if self.radix > 1:
            splits = x.view(batch, self.radix, channels, *x.shape[2:])
            gap = splits.sum(dim=1)
        else:
            gap = x
        gap = F.adaptive_avg_pool2d(gap, 1)
        gap = self.relu(modules[self.norm1_name](self.fc1(gap)))
        atten = self.rsoftmax(self.fc2(gap)).view(batch, channels * self.radix, 1, 1)
        if self.radix > 1:
            out = (atten.view(batch, self.radix, channels, 1, 1) * splits).sum(dim=1)
        else:
            out = atten * x
        return out.contiguous()


def grouped_width(out_channels: int, expansion: int, groups: int, width_per_group: int,
                  base_channels: int) -> int:
    """The middle width of a (grouped) bottleneck: ``out_channels // expansion`` for
    ``groups=1``, else ``groups * width_per_group * (out_channels // expansion) //
    base_channels`` (mmpretrain's; mmdet's ``floor(planes * base_width / base_channels) *
    groups`` wherever it is an integer width)."""
    check_positive_int('expansion', expansion)
    if out_channels % expansion:
        raise ValueError(f'out_channels ({out_channels}) must be divisible by expansion '
                         f'({expansion})')
    mid = out_channels // expansion
    if groups == 1:
        return mid
    check_positive_int('width_per_group', width_per_group)
    check_positive_int('base_channels', base_channels)
    if mid % base_channels:
        raise ValueError(f'grouped bottleneck: out_channels // expansion ({mid}) must be '
                         f'divisible by base_channels ({base_channels})')
    return groups * width_per_group * mid // base_channels


class ResNeStBottleneck(ResidualBlockBase):
    """1x1 reduce, split-attention 3x3, (3x3 average pool for the stride), 1x1 expand, with a
    residual connection.

    Input ``(N, in_channels, H, W)``; output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. ``avg_down_stride`` (ResNeSt's default) gives the stride of a
    ``style='pytorch'`` block to an ``AvgPool2d(3, stride, padding=1)`` after the split-attention
    conv (``avd_layer``), which then runs at stride 1. Other arguments as
    :class:`~.resnet_blocks.Bottleneck`.
    """

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, expansion: int = 4, stride: int = 1,
                 dilation: int = 1, downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch', with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True), drop_path_rate: float = 0.0,
                 groups: int = 1, width_per_group: int = 4, base_channels: int = 64,
                 radix: int = 2, reduction_factor: int = 4, avg_down_stride: bool = True,
                 dcn: Optional[dict] = None, plugins: Optional[Sequence[dict]] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self._init_common(in_channels, out_channels, stride, dilation, downsample, style,
                          with_cp, conv_cfg, norm_cfg, act_cfg, drop_path_rate)
        check_positive_int('groups', groups)
        check_bool('avg_down_stride', avg_down_stride)
        mid = grouped_width(out_channels, expansion, groups, width_per_group, base_channels)
        self.expansion, self.mid_channels = expansion, mid
        self.groups, self.width_per_group = groups, width_per_group
        self.radix, self.reduction_factor = radix, reduction_factor
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.avg_down_stride = avg_down_stride and self.conv2_stride > 1
        self.dcn, self.with_dcn = dcn, dcn is not None

        self._add_conv_norm(build_conv_layer(conv_cfg, in_channels, mid, kernel_size=1,
                                             stride=self.conv1_stride, bias=False), mid)
        self._add_step('conv2', SplitAttentionConv2d(
            mid, mid, kernel_size=3, stride=1 if self.avg_down_stride else self.conv2_stride,
            padding=dilation, dilation=dilation, groups=groups, radix=radix,
            reduction_factor=reduction_factor, conv_cfg=conv_cfg, norm_cfg=norm_cfg, dcn=dcn))
        self.avd_layer = (nn.AvgPool2d(3, self.conv2_stride, padding=1)
                          if self.avg_down_stride else None)
        self._add_conv_norm(build_conv_layer(conv_cfg, mid, out_channels, kernel_size=1,
                                             bias=False), out_channels)
        self._finish(plugins, (mid, mid, out_channels))

    norm3, norm3_name = _norm_at(2)

    def after_fuse(self) -> None:
        """Folded norms keep this block's own forward (the split-attention conv is not a plain
        conv+ReLU step)."""
        self._folded = False

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`ScriptableResNeStBottleneck` (the same
        modules; plugins and drop path are refused, naming why)."""
        from .scripting import keep_source
        return keep_source(ScriptableResNeStBottleneck(self), self)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        (conv1, norm1, after1), (conv2, _, after2), (conv3, norm3, after3) = self._steps
        out = self.relu(modules[norm1](modules[conv1](x)))
        for name in after1:
            out = modules[name](out)
        out = modules[conv2](out)
        if self.avd_layer is not None:
            out = self.avd_layer(out)
        for name in after2:
            out = modules[name](out)
        out = modules[norm3](modules[conv3](out))
        for name in after3:
            out = modules[name](out)
        shortcut = modules.get(self._shortcut_name)
        identity = x if shortcut is None else shortcut(x)
        out = self.drop_path(out)
        out += identity
        return out


class ScriptableSplitAttention(nn.Module):
    """:class:`SplitAttentionConv2d`'s forward in TorchScript's subset, over the same modules."""

    def __init__(self, module: SplitAttentionConv2d):
        super().__init__()
        self.conv, self.norm0, self.relu = module.conv, module.norm0, module.relu
        self.fc1, self.norm1, self.fc2 = module.fc1, module.norm1, module.fc2
        self.rsoftmax = module.rsoftmax
        self.radix: int = int(module.radix)
        self.channels: int = int(module.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.norm0(self.conv(x)))
        batch, channels = x.size(0), self.channels
        splits = x
        gap = x
        if self.radix > 1:
            splits = x.view(batch, self.radix, channels, x.shape[2], x.shape[3])
            gap = splits.sum(dim=1)
        gap = F.adaptive_avg_pool2d(gap, 1)
        gap = self.relu(self.norm1(self.fc1(gap)))
        atten = self.rsoftmax(self.fc2(gap)).view(batch, channels * self.radix, 1, 1)
        if self.radix > 1:
            out = (atten.view(batch, self.radix, channels, 1, 1) * splits).sum(dim=1)
        else:
            out = atten * x
        return out.contiguous()


class ScriptableResNeStBottleneck(nn.Module):
    """:class:`ResNeStBottleneck` without plugins or drop path, over the same modules:
    ``conv1``-norm-ReLU, the split-attention ``conv2`` (its own norm and ReLU), the average
    down-sampling, ``conv3``-norm, plus the shortcut, ReLU."""

    def __init__(self, block: 'ResNeStBottleneck'):
        super().__init__()
        from .scripting import not_scriptable
        reasons = []
        if getattr(block, 'with_plugins', False) or any(p for _, _, p in block._steps):
            reasons.append('plugins')
        if not isinstance(block.drop_path, nn.Identity):
            reasons.append('drop path (drop_path_rate > 0)')
        if reasons:
            raise not_scriptable(type(block).__name__, ', '.join(reasons))
        modules = block._modules
        (conv1, norm1, _), (conv2, _, _), (conv3, norm3, _) = block._steps
        self.conv1, self.norm1, self.conv2 = modules[conv1], modules[norm1], modules[conv2]
        self.avd = block.avd_layer if block.avd_layer is not None else nn.Identity()
        self.conv3, self.norm3 = modules[conv3], modules[norm3]
        self.shortcut = modules.get(block._shortcut_name)
        self.relu = block.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm3(self.conv3(self.avd(self.conv2(out))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        else:
            out = out + x
        return self.relu(out)


__all__ = ['ScriptableSplitAttention', 'ScriptableResNeStBottleneck', 'RSoftmax', 'SplitAttentionConv2d', 'ResNeStBottleneck', 'grouped_width']
