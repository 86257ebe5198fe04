"""Residual blocks of the ResNet family and the builder of one residual stage.

Parameter names follow mmpretrain's ``BasicBlock`` / ``Bottleneck`` / ``ResLayer`` exactly
(``conv1``, ``bn1``, ..., ``downsample.0`` conv and ``downsample.1`` norm, or with ``avg_down``
``downsample.0`` pool, ``.1`` conv, ``.2`` norm), so mmpretrain/mmcls checkpoints load unchanged.
The norm layers are named by mmcv's ``build_norm_layer`` (``bn1`` for BN/SyncBN/FrozenBN, ``gn1``
for GN).

One ``Bottleneck`` covers ResNet (``groups=1``), ResNeXt (``groups``, ``width_per_group``) and
RegNet (``expansion=1``, ``base_channels`` = stage width) the way mmpretrain's ResNeXt bottleneck
does: the middle width is ``out_channels // expansion`` for ``groups=1`` and
``groups * width_per_group * (out_channels // expansion) // base_channels`` otherwise.

Each block declares ``conv_norm_pairs()`` so ``layers.fuse.fuse_conv_bn`` can fold its eval-mode
norms into the convs; once every norm of a block is folded (``after_fuse``), its eval forward
runs conv+ReLU and conv+add+ReLU as single kernels where the platform has them.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import nn

from ...utils.validation import check_choice, check_positive_int
from .drop import DropPath
from .fuse import conv_add_relu, conv_relu

STYLES = ('pytorch', 'caffe')


def _all_folded(block: nn.Module, norm_attrs) -> bool:
    """True when every norm of ``block`` was folded away and its activation is a plain ReLU, so
    the eval forward may use the fused conv kernels."""
    return (all(isinstance(block._modules[getattr(block, a)], nn.Identity) for a in norm_attrs)
            and type(block.relu) is nn.ReLU)


def _drop_path_or_identity(rate: float) -> nn.Module:
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
        raise ValueError(f'drop_path_rate must be a float in [0, 1), got {rate!r}')
    # An Identity (no module call cost worth mentioning, nothing in the state dict) when unused.
    return DropPath(float(rate)) if rate > 1e-5 else nn.Identity()


class BasicBlock(BaseModule):
    """Two 3x3 convs with a residual connection (ResNet-18/34).

    Input ``(N, in_channels, H, W)``; output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. ``stride`` and ``dilation`` apply to the first conv; ``style`` is
    accepted for a common signature with :class:`Bottleneck` and has no effect.
    ``downsample`` maps the input to the output shape when they differ.
    """

    expansion = 1
    _folded = False  # set by after_fuse(): norms folded into the convs

    def __init__(self, in_channels: int, out_channels: int, expansion: int = 1, stride: int = 1,
                 dilation: int = 1, downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch', with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True), drop_path_rate: float = 0.0,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_positive_int('in_channels', in_channels)
        check_positive_int('out_channels', out_channels)
        if expansion != 1:
            raise ValueError(f'BasicBlock has no bottleneck: expansion must be 1, got '
                             f'{expansion!r}')
        check_positive_int('stride', stride)
        check_positive_int('dilation', dilation)
        check_choice('style', style, STYLES)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.expansion = 1
        self.mid_channels = out_channels
        self.stride, self.dilation, self.style = stride, dilation, style
        self.with_cp = with_cp
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg

        self.conv1 = build_conv_layer(conv_cfg, in_channels, self.mid_channels, 3, stride=stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, self.mid_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, self.mid_channels, out_channels, 3, padding=1,
                                      bias=False)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, out_channels, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.relu = build_activation_layer(act_cfg)
        self.downsample = downsample
        self.drop_path = _drop_path_or_identity(drop_path_rate)

    @property
    def norm1(self) -> nn.Module:
        return self._modules[self.norm1_name]

    @property
    def norm2(self) -> nn.Module:
        return self._modules[self.norm2_name]

    @property
    def last_norm(self) -> nn.Module:
        """The norm closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.norm2

    def conv_norm_pairs(self) -> List[Tuple[str, str]]:
        return [('conv1', self.norm1_name), ('conv2', self.norm2_name)]

    def after_fuse(self) -> None:
        self._folded = _all_folded(self, ('norm1_name', 'norm2_name'))

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        out = self.relu(modules[self.norm1_name](self.conv1(x)))
        out = modules[self.norm2_name](self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        out = self.drop_path(out)
        out += identity
        return out

    def _folded_forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return conv_add_relu(self.conv2, conv_relu(self.conv1, x), identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._folded and not self.training:
            return self._folded_forward(x)
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


class Bottleneck(BaseModule):
    """1x1 reduce, 3x3 (grouped for ResNeXt/RegNet), 1x1 expand, with a residual connection.

    Input ``(N, in_channels, H, W)``; output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. ``style='pytorch'`` puts the stride on the 3x3 conv, ``'caffe'``
    (detectron2's ``stride_in_1x1=True``) on the first 1x1 conv. ``dilation`` applies to the
    3x3 conv.
    """

    expansion = 4
    _folded = False  # set by after_fuse(): norms folded into the convs

    def __init__(self, in_channels: int, out_channels: int, expansion: int = 4, stride: int = 1,
                 dilation: int = 1, downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch', with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True), drop_path_rate: float = 0.0,
                 groups: int = 1, width_per_group: int = 4, base_channels: int = 64,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_positive_int('in_channels', in_channels)
        check_positive_int('out_channels', out_channels)
        check_positive_int('expansion', expansion)
        check_positive_int('stride', stride)
        check_positive_int('dilation', dilation)
        check_positive_int('groups', groups)
        check_choice('style', style, STYLES)
        if out_channels % expansion:
            raise ValueError(f'out_channels ({out_channels}) must be divisible by expansion '
                             f'({expansion})')
        mid_channels = out_channels // expansion
        if groups != 1:
            check_positive_int('width_per_group', width_per_group)
            check_positive_int('base_channels', base_channels)
            if mid_channels % base_channels:
                raise ValueError(f'grouped Bottleneck: out_channels // expansion '
                                 f'({mid_channels}) must be divisible by base_channels '
                                 f'({base_channels})')
            mid_channels = groups * width_per_group * mid_channels // base_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.expansion, self.mid_channels = expansion, mid_channels
        self.stride, self.dilation, self.style = stride, dilation, style
        self.groups, self.width_per_group = groups, width_per_group
        self.with_cp = with_cp
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)

        self.conv1 = build_conv_layer(conv_cfg, in_channels, mid_channels, kernel_size=1,
                                      stride=self.conv1_stride, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, mid_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, mid_channels, mid_channels, kernel_size=3,
                                      stride=self.conv2_stride, padding=dilation,
                                      dilation=dilation, groups=groups, bias=False)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, mid_channels, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(conv_cfg, mid_channels, out_channels, kernel_size=1,
                                      bias=False)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, out_channels, postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.relu = build_activation_layer(act_cfg)
        self.downsample = downsample
        self.drop_path = _drop_path_or_identity(drop_path_rate)

    @property
    def norm1(self) -> nn.Module:
        return self._modules[self.norm1_name]

    @property
    def norm2(self) -> nn.Module:
        return self._modules[self.norm2_name]

    @property
    def norm3(self) -> nn.Module:
        return self._modules[self.norm3_name]

    @property
    def last_norm(self) -> nn.Module:
        """The norm closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.norm3

    def conv_norm_pairs(self) -> List[Tuple[str, str]]:
        return [('conv1', self.norm1_name), ('conv2', self.norm2_name),
                ('conv3', self.norm3_name)]

    def after_fuse(self) -> None:
        self._folded = _all_folded(self, ('norm1_name', 'norm2_name', 'norm3_name'))

    def _folded_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = conv_relu(self.conv2, conv_relu(self.conv1, x))
        identity = x if self.downsample is None else self.downsample(x)
        return conv_add_relu(self.conv3, out, identity)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        out = self.relu(modules[self.norm1_name](self.conv1(x)))
        out = self.relu(modules[self.norm2_name](self.conv2(out)))
        out = modules[self.norm3_name](self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        out = self.drop_path(out)
        out += identity
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._folded and not self.training:
            return self._folded_forward(x)
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


def get_expansion(block: type, expansion: Optional[int] = None) -> int:
    """``expansion`` when given, else the block class's ``expansion`` attribute."""
    if expansion is not None:
        return check_positive_int('expansion', expansion)
    value = getattr(block, 'expansion', None)
    if value is None:
        raise TypeError(f'expansion is not given and {block.__name__} has no "expansion" '
                        f'attribute')
    return value


def make_downsample(in_channels: int, out_channels: int, stride: int = 1,
                    avg_down: bool = False, conv_cfg: Optional[dict] = None,
                    norm_cfg: dict = dict(type='BN')) -> nn.Sequential:
    """The identity branch of a block whose input and output shapes differ.

    ``[AvgPool2d(stride),] conv1x1(stride or 1), norm``: with ``avg_down`` (ResNet-D) the
    spatial reduction is an average pool (``ceil_mode``, so odd sides match the 3x3 conv's
    output) and the 1x1 conv keeps stride 1.
    """
    layers = []
    conv_stride = stride
    if avg_down and stride != 1:
        conv_stride = 1
        layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True,
                                   count_include_pad=False))
    layers.append(build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size=1,
                                   stride=conv_stride, bias=False))
    layers.append(build_norm_layer(norm_cfg, out_channels)[1])
    return nn.Sequential(*layers)


class ResLayer(nn.Sequential):
    """One residual stage: ``num_blocks`` blocks, the first one with ``stride`` and (when the
    shape changes) a downsample branch.

    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``. Every block gets ``dilation`` (DC5 / output-stride-8 stages use
    ``stride=1, dilation=2`` or ``4``). ``drop_path_rate`` is one float for every block or one
    per block. Other keyword arguments go to every block (``style``, ``with_cp``, ``groups``,
    ``width_per_group``, ``base_channels``, ``act_cfg``).
    """

    def __init__(self, block: type, num_blocks: int, in_channels: int, out_channels: int,
                 expansion: Optional[int] = None, stride: int = 1, dilation: int = 1,
                 avg_down: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: Union[float, Sequence[float]] = 0.0, **kwargs):
        check_positive_int('num_blocks', num_blocks)
        self.block = block
        self.expansion = get_expansion(block, expansion)
        if isinstance(drop_path_rate, (int, float)):
            rates = [float(drop_path_rate)] * num_blocks
        else:
            rates = list(drop_path_rate)
            if len(rates) != num_blocks:
                raise ValueError(f'drop_path_rate has {len(rates)} values for {num_blocks} '
                                 f'blocks; give one float or one value per block')
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = make_downsample(in_channels, out_channels, stride, avg_down, conv_cfg,
                                         norm_cfg)
        blocks = []
        for i in range(num_blocks):
            blocks.append(block(
                in_channels=in_channels if i == 0 else out_channels,
                out_channels=out_channels, expansion=self.expansion,
                stride=stride if i == 0 else 1, dilation=dilation,
                downsample=downsample if i == 0 else None, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, drop_path_rate=rates[i], **kwargs))
        super().__init__(*blocks)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.dilation = stride, dilation


def make_res_layer(**kwargs) -> ResLayer:
    """Functional spelling of :class:`ResLayer` (same keyword arguments)."""
    return ResLayer(**kwargs)


__all__ = ['BasicBlock', 'Bottleneck', 'ResLayer', 'make_res_layer', 'make_downsample',
           'get_expansion']
