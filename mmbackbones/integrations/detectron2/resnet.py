"""detectron2's ResNet, with detectron2's names, arguments and parameter names.

The module mirrors ``detectron2.modeling.backbone.resnet`` (and detrex's copy of it) without
importing detectron2: :class:`BasicStem`, :class:`BasicBlock`, :class:`BottleneckBlock`,
:func:`make_stage` (one stage, detectron2's ``ResNet.make_stage``), :func:`make_default_stages`
(all four stages of a depth) and :class:`Detectron2ResNet` (registered under that name, so
mmengine configs build it). Parameter names are detectron2's: ``stem.conv1.weight``,
``stem.conv1.norm.*``, ``res2.0.conv1.weight``, ``res2.0.conv1.norm.*``, ``res2.0.shortcut.*``,
so detectron2/detrex checkpoints load as they are (``DetectionCheckpointer``, detrex's
``train.init_checkpoint``, our ``init_cfg``). Checkpoints in mmpretrain/torchvision names
(``conv1``, ``bn1``, ``layer1.0.downsample.0``) and caffe2 names (``res2_0_branch2a_w``) are
renamed on load; a checkpoint whose convs match but whose norms do not is refused.

:func:`make_resnet_stages` is detrex's module-level ``make_stage`` (all stages from
``depth``/``res5_dilation``/``num_groups``/..., the logic of detectron2's
``build_resnet_backbone``); ``mmbackbones.detrex`` exports it under detrex's name.

``Detectron2ResNet`` is an mmbackbones ``BaseBackbone``; the class detrex users import
(``mmbackbones.detrex.ResNet``) is the same network and also a ``detectron2.modeling.Backbone``.
"""
import re
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ...checkpoint.converters.detectron2_resnet import (caffe2_to_detectron2, is_caffe2_resnet,
                                                        rename_mmpretrain_to_d2)
from ...checkpoint.state import CheckpointMismatchError
from ...models.base import BaseBackbone
from ...models.layers.conv import StridedPointwiseConv2d, fast_class, register_fast_path
from ...models.layers.mmcv_bricks import build_norm_layer
from ...models.layers.norm import FrozenBatchNorm2d, check_norm_cfg
from ...models.layers.resnet_blocks import ResidualBlockBase
from ...registry import MODELS
from ...utils.validation import check_bool, check_choice, check_positive_int, to_plain

NormSpec = Union[str, dict, Callable[[int], nn.Module], None]
_D2_NORMS = {
    'FrozenBN': dict(type='FrozenBN'),
    'BN': dict(type='BN'),
    'SyncBN': dict(type='SyncBN'),
    'naiveSyncBN': dict(type='SyncBN'),
    'GN': dict(type='GN', num_groups=32),
}
BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                    152: (3, 8, 36, 3)}


def d2_norm_cfg(norm: Union[str, dict]) -> dict:
    """detectron2's ``norm`` string (``'FrozenBN'``, ``'BN'``, ``'SyncBN'``, ``'GN'``) as an mmcv
    ``norm_cfg``; a dict is taken as a ``norm_cfg`` already."""
    if isinstance(norm, dict):
        return check_norm_cfg(dict(norm))
    if isinstance(norm, str) and norm in _D2_NORMS:
        return dict(_D2_NORMS[norm])
    raise ValueError(f'norm must be one of {", ".join(repr(n) for n in _D2_NORMS)}, an mmcv '
                     f'norm_cfg dict or a callable channels -> module, got {norm!r}')


def get_norm(norm: NormSpec, channels: int) -> Optional[nn.Module]:
    """detectron2's ``get_norm``: ``None``/``''`` for no norm, a name, a dict or a callable."""
    if norm is None or norm == '':
        return None
    if callable(norm) and not isinstance(norm, (str, dict)):
        return norm(channels)
    return build_norm_layer(d2_norm_cfg(norm), channels)[1]


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by an optional ``norm`` (a child named ``norm``), as detectron2's
    ``layers.Conv2d``: the norm's parameters are ``<conv>.norm.*``."""

    def __init__(self, *args, norm: Optional[nn.Module] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        # detectron2's c2_msra_fill
        nn.init.kaiming_normal_(self.weight, mode='fan_out', nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._conv_forward(x, self.weight, self.bias)
        if self.norm is not None:
            x = self.norm(x)
        return x


class StridedPointwiseConv2dWithNorm(StridedPointwiseConv2d, Conv2d):
    """The CPU fast class of a strided 1x1 :class:`Conv2d` (``layers/conv.py``'s switch)."""


register_fast_path(Conv2d, StridedPointwiseConv2dWithNorm)


def conv2d(*args, **kwargs) -> Conv2d:
    """A :class:`Conv2d`, in its CPU fast class where the switch of ``layers/conv.py`` says so."""
    conv = Conv2d(*args, **kwargs)
    conv.__class__ = fast_class(Conv2d, conv)
    return conv


class CNNBlockBase(nn.Module):
    """A block with ``in_channels``, ``out_channels``, ``stride`` and detectron2's ``freeze()``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.out_channels = check_positive_int('out_channels', out_channels)
        self.stride = check_positive_int('stride', stride)

    def freeze(self):
        """No gradients, and every BatchNorm becomes a FrozenBatchNorm2d (detectron2's)."""
        for p in self.parameters():
            p.requires_grad = False
        FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        return self


class _ResidualBlock(CNNBlockBase, ResidualBlockBase):
    """detectron2's names (``shortcut``, ``convK`` holding ``convK.norm``) over the residual
    block the native ResNet uses (``layers.resnet_blocks.ResidualBlockBase``: same forward)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: NormSpec):
        super().__init__(in_channels, out_channels, stride)
        shortcut = None
        if in_channels != out_channels:
            shortcut = conv2d(in_channels, out_channels, kernel_size=1, stride=stride,
                              bias=False, norm=get_norm(norm, out_channels))
        self._init_common(in_channels, out_channels, stride, 1, shortcut, 'pytorch', False,
                          None, None, dict(type='ReLU', inplace=True), 0.0,
                          shortcut_name='shortcut')

    def _conv(self, name: str, *args, norm: NormSpec, **kwargs) -> None:
        self._add_step(name, conv2d(*args, bias=False, norm=get_norm(norm, args[1]), **kwargs))


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs (ResNet-18/34): ``(N, in, H, W)`` -> ``(N, out, H / stride, W / stride)``."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1,
                 norm: NormSpec = 'BN'):
        super().__init__(in_channels, out_channels, stride, norm)
        self._conv('conv1', in_channels, out_channels, 3, stride=stride, padding=1, norm=norm)
        self._conv('conv2', out_channels, out_channels, 3, stride=1, padding=1, norm=norm)
        self._finish((), ())


class BottleneckBlock(_ResidualBlock):
    """1x1, 3x3 (grouped, dilated), 1x1 convs; ``stride_in_1x1`` puts the stride on the first 1x1
    (MSRA weights), else on the 3x3. ``(N, in, H, W)`` -> ``(N, out, H / stride, W / stride)``."""

    def __init__(self, in_channels: int, out_channels: int, *, bottleneck_channels: int,
                 stride: int = 1, num_groups: int = 1, norm: NormSpec = 'BN',
                 stride_in_1x1: bool = False, dilation: int = 1):
        check_positive_int('bottleneck_channels', bottleneck_channels)
        check_positive_int('num_groups', num_groups)
        check_positive_int('dilation', dilation)
        if bottleneck_channels % num_groups:
            raise ValueError(f'bottleneck_channels ({bottleneck_channels}) must be divisible by '
                             f'num_groups ({num_groups})')
        super().__init__(in_channels, out_channels, stride, norm)
        self.dilation = dilation
        s1x1, s3x3 = (stride, 1) if check_bool('stride_in_1x1', stride_in_1x1) else (1, stride)
        self._conv('conv1', in_channels, bottleneck_channels, 1, stride=s1x1, norm=norm)
        self._conv('conv2', bottleneck_channels, bottleneck_channels, 3, stride=s3x3,
                   padding=dilation, groups=num_groups, dilation=dilation, norm=norm)
        self._conv('conv3', bottleneck_channels, out_channels, 1, norm=norm)
        self._finish((), ())


class BasicStem(CNNBlockBase):
    """7x7 conv stride 2 + norm + ReLU + 3x3 max pool stride 2:
    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / 4, W / 4)``."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm: NormSpec = 'BN'):
        super().__init__(in_channels, out_channels, 4)
        self.conv1 = conv2d(in_channels, out_channels, kernel_size=7, stride=2, padding=3,
                            bias=False, norm=get_norm(norm, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


_BLOCK_NAMES = {'BasicBlock': BasicBlock, 'BottleneckBlock': BottleneckBlock,
                'Bottleneck': BottleneckBlock}


def _block_class(block_class):
    if isinstance(block_class, str):
        check_choice('block_class', block_class, tuple(_BLOCK_NAMES))
        return _BLOCK_NAMES[block_class]
    if not (isinstance(block_class, type) and issubclass(block_class, nn.Module)):
        raise TypeError(f'block_class must be a block class (BasicBlock, BottleneckBlock) or '
                        f'its name, got {block_class!r}')
    return block_class


def make_stage(block_class, num_blocks: int, *, in_channels: int, out_channels: int,
               **kwargs) -> List[nn.Module]:
    """One stage: ``num_blocks`` blocks of ``block_class`` (detectron2's ``ResNet.make_stage``).

    ``kwargs`` go to every block; an argument ``<name>_per_block`` is a list with one value per
    block (``stride_per_block=[2, 1, 1]``). Returns a list of blocks.
    """
    block_class = _block_class(block_class)
    num_blocks = check_positive_int('num_blocks', num_blocks)
    kwargs = to_plain(kwargs)
    blocks = []
    for i in range(num_blocks):
        block_kwargs = {}
        for key, value in kwargs.items():
            if key.endswith('_per_block'):
                base = key[:-len('_per_block')]
                if base in kwargs:
                    raise ValueError(f'make_stage got both {key} and {base}; pass one')
                if not isinstance(value, (list, tuple)) or len(value) != num_blocks:
                    raise ValueError(f'{key} must have one value per block (num_blocks='
                                     f'{num_blocks}), got {value!r}')
                block_kwargs[base] = value[i]
            else:
                block_kwargs[key] = value
        blocks.append(block_class(in_channels=in_channels, out_channels=out_channels,
                                  **block_kwargs))
        in_channels = out_channels
    return blocks


def make_default_stages(depth: int, block_class=None, **kwargs) -> List[List[nn.Module]]:
    """The four stages of a ResNet of ``depth`` (18, 34, 50, 101, 152), detectron2's
    ``ResNet.make_default_stages``: channels and strides fixed by the depth, ``kwargs`` (``norm``,
    ``stride_in_1x1``, ...) passed to :func:`make_stage`."""
    check_choice('depth', depth, tuple(BLOCKS_PER_STAGE))
    for fixed in ('in_channels', 'out_channels', 'stride', 'stride_per_block'):
        if fixed in kwargs:
            raise ValueError(f'make_default_stages fixes {fixed} from depth={depth}; use '
                             f'make_stage (or make_resnet_stages) to set it')
    block_class = _block_class(block_class or (BasicBlock if depth < 50 else BottleneckBlock))
    if depth < 50:
        ins, outs = (64, 64, 128, 256), (64, 128, 256, 512)
    else:
        ins, outs = (64, 256, 512, 1024), (256, 512, 1024, 2048)
    stages = []
    for n, s, i, o in zip(BLOCKS_PER_STAGE[depth], (1, 2, 2, 2), ins, outs):
        extra = dict(bottleneck_channels=o // 4) if depth >= 50 else {}
        stages.append(make_stage(block_class, n, in_channels=i, out_channels=o,
                                 stride_per_block=[s] + [1] * (n - 1), **kwargs, **extra))
    return stages


def make_resnet_stages(depth: int = 50, norm: NormSpec = 'FrozenBN', num_groups: int = 1,
                       width_per_group: int = 64, in_channels: int = 64,
                       out_channels: Optional[int] = None, stride_in_1x1: bool = False,
                       res5_dilation: int = 1,
                       deform_on_per_stage: Sequence[bool] = (False, False, False, False),
                       deform_modulated: bool = False,
                       deform_num_groups: int = 1) -> List[List[nn.Module]]:
    """All stages res2..res5 the way detectron2's ``build_resnet_backbone`` makes them (detrex's
    module-level ``make_stage``). ``res5_dilation=2`` is DC5 (res5 keeps stride 16);
    ``num_groups``/``width_per_group`` make a ResNeXt (res2's bottleneck has
    ``num_groups * width_per_group`` channels); ``out_channels`` is res2's output (default 64
    for depth 18/34, 256 otherwise). Deformable stages need detectron2's ``DeformConv`` and are
    not supported."""
    check_choice('depth', depth, tuple(BLOCKS_PER_STAGE))
    check_choice('res5_dilation', res5_dilation, (1, 2))
    deform_on_per_stage = to_plain(deform_on_per_stage)
    if any(deform_on_per_stage):
        raise ValueError(f'deform_on_per_stage={list(deform_on_per_stage)}: deformable stages '
                         f'need detectron2\'s DeformConv; use detectron2/detrex\'s own ResNet')
    basic = depth in (18, 34)
    if out_channels is None:
        out_channels = 64 if basic else 256
    if basic and (out_channels != 64 or res5_dilation != 1 or num_groups != 1):
        raise ValueError(f'depth {depth} uses basic blocks: out_channels must be 64, '
                         f'res5_dilation 1 and num_groups 1 (got {out_channels}, {res5_dilation}, '
                         f'{num_groups})')
    bottleneck = num_groups * width_per_group
    stages = []
    for idx, num_blocks in enumerate(BLOCKS_PER_STAGE[depth]):
        dilation = res5_dilation if idx == 3 else 1
        first_stride = 1 if idx == 0 or (idx == 3 and dilation == 2) else 2
        kwargs = dict(stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                      in_channels=in_channels, out_channels=out_channels, norm=norm)
        if basic:
            stages.append(make_stage(BasicBlock, num_blocks, **kwargs))
        else:
            stages.append(make_stage(BottleneckBlock, num_blocks, bottleneck_channels=bottleneck,
                                     stride_in_1x1=stride_in_1x1, dilation=dilation,
                                     num_groups=num_groups, **kwargs))
        in_channels, out_channels, bottleneck = out_channels, out_channels * 2, bottleneck * 2
    return stages


def _without_type(kwargs: Optional[dict], expected: str) -> dict:
    kwargs = dict(kwargs or {})
    kind = kwargs.pop('type', expected)
    if kind != expected:
        raise ValueError(f'expected type={expected!r} (or no type) here, got {kind!r}')
    return kwargs


def _is_block(block) -> bool:
    return all(isinstance(getattr(block, a, None), int) for a in ('out_channels', 'stride'))


def _stage_blocks(index: int, stage) -> List[nn.Module]:
    """The blocks of ``stages[index]``: a non-empty list of blocks with int ``out_channels`` and
    ``stride`` (``TypeError`` otherwise)."""
    blocks = list(stage) if isinstance(stage, (list, tuple, nn.Sequential)) else []
    if blocks and all(_is_block(b) for b in blocks):
        return blocks
    raise TypeError(f'stages[{index}] must be a non-empty list of blocks with int out_channels '
                    f'and stride (see make_stage), got {stage!r:.120}')


@MODELS.register_module()
class Detectron2ResNet(BaseBackbone):
    """detectron2's ``ResNet(stem, stages, num_classes=None, out_features=None, freeze_at=0)``.

    Args:
        stem: a :class:`BasicStem` (or a module with ``out_channels`` and ``stride``), or a dict of
            ``BasicStem`` arguments.
        stages: a list of stages, each a list of blocks (:func:`make_default_stages`,
            :func:`make_stage`), or a dict of :func:`make_resnet_stages` arguments
            (``dict(depth=50, norm='FrozenBN', res5_dilation=2)``). Named ``res2``, ``res3``, ...
        out_features: names to return among ``'stem'`` and the stage names (default: the last
            stage). Stages after the last one requested are not built.
        freeze_at: detectron2's meaning: ``<= 0`` nothing, 1 the stem, 2 the stem and res2, ...
            (any int, as in detectron2; frozen blocks: no gradients, BatchNorms converted to
            FrozenBatchNorm2d).
        num_classes: the classification head is not supported (must be None).

    ``forward(x)`` with ``x`` ``(N, C, H, W)`` returns ``{name: (N, C_name, H / s_name,
    W / s_name)}`` in ``out_features`` order; ``output_shape()`` gives channels and strides.
    """

    make_stage = staticmethod(make_stage)
    make_default_stages = staticmethod(make_default_stages)

    def __init__(self, stem: Union[nn.Module, dict, None] = None,
                 stages: Union[Sequence, dict, None] = None,
                 num_classes: Optional[int] = None,
                 out_features: Optional[Sequence[str]] = None, freeze_at: int = 0,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_classes is not None:
            raise ValueError(f'num_classes must be None (a backbone has no classifier head), '
                             f'got {num_classes!r}')
        if stem is None or isinstance(stem, dict):
            stem = BasicStem(**_without_type(stem, 'BasicStem'))
        if not isinstance(stem, nn.Module) or not isinstance(getattr(stem, 'out_channels', None),
                                                             int):
            raise TypeError(f'stem must be a BasicStem (or nn.Module with out_channels and '
                            f'stride) or a dict of BasicStem arguments, got {type(stem).__name__}')
        if stages is None or isinstance(stages, dict):
            stages = make_resnet_stages(**_without_type(stages, 'make_resnet_stages'))
        if not isinstance(stages, (list, tuple, nn.ModuleList)) or not stages:
            raise TypeError(f'stages must be a non-empty list of stages (lists of blocks) or a '
                            f'dict of make_resnet_stages arguments, got {stages!r:.120}')
        names = ['stem'] + [f'res{i + 2}' for i in range(len(stages))]
        out_features = self._check_out_features(out_features, names)
        if isinstance(freeze_at, bool) or not isinstance(freeze_at, int):
            raise TypeError(f'freeze_at must be an int (detectron2\'s meaning: <= 0 nothing, 1 '
                            f'the stem, 2 stem and res2, ...), got {freeze_at!r}')
        self.num_classes = None
        self.feature_names: List[str] = list(out_features)
        self.freeze_at = freeze_at
        self.in_channels = getattr(stem, 'in_channels', None)
        self.stem = stem
        stride = getattr(stem, 'stride', 4)
        channels, strides = {'stem': stem.out_channels}, {'stem': stride}
        self.stage_names: List[str] = []
        num_built = max(names.index(f) for f in out_features)  # nothing after the last output
        for i, stage in enumerate(stages[:num_built]):
            blocks = _stage_blocks(i, stage)
            name = names[i + 1]
            self.add_module(name, stage if isinstance(stage, nn.Sequential)
                            else nn.Sequential(*blocks))
            self.stage_names.append(name)
            for block in blocks:
                stride *= block.stride
            channels[name], strides[name] = blocks[-1].out_channels, stride
        self._set_outputs([channels[f] for f in out_features], [strides[f] for f in out_features],
                          out_features)
        self.freeze(freeze_at)

    @staticmethod
    def _check_out_features(out_features, names: List[str]) -> List[str]:
        if out_features is None:
            return [names[-1]]
        if isinstance(out_features, str) or not isinstance(out_features, (list, tuple)) or \
                not out_features:
            raise TypeError(f'out_features must be a non-empty list of names among {names}, '
                            f'got {out_features!r}')
        for feature in out_features:
            check_choice('out_features', feature, names)
        if len(set(out_features)) != len(out_features):
            raise ValueError(f'out_features repeats a name: {list(out_features)}')
        return list(out_features)

    def freeze(self, freeze_at: int = 0):
        """detectron2's ``ResNet.freeze``: 1 freezes the stem, ``k`` the stem and res2..res{k}.
        Returns ``self``."""
        if freeze_at >= 1:
            _freeze(self.stem)
        for idx, name in enumerate(self.stage_names, start=2):
            if freeze_at >= idx:
                for block in self._modules[name].children():
                    _freeze(block)
        return self

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.stem] + [self._modules[n] for n in self.stage_names]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``(N, C, H, W)`` -> ``{name: feature}`` for every name in ``out_features``."""
        self.check_input(x)
        feats = {}
        x = self.stem(x)
        feats['stem'] = x
        for name in self.stage_names:
            x = self._modules[name](x)
            feats[name] = x
        return {name: feats[name] for name in self.feature_names}

    def forward_dict(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return self(x)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`.scripting.ScriptableResNet`, the same
        modules with a forward in TorchScript's subset."""
        from .scripting import ScriptableResNet
        return ScriptableResNet(self)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        _to_detectron2_names(state_dict, prefix)
        self._refuse_half_match(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def _refuse_half_match(self, state_dict, prefix: str) -> None:
        """A checkpoint that has this model's conv weights but none of their norms would load
        the convs and leave every norm at init: refuse it, naming what is missing."""
        own = [k for k in self.state_dict() if k.endswith('.norm.weight')]
        convs = [k[:-len('.norm.weight')] + '.weight' for k in own]
        with_conv = [k for k, c in zip(own, convs) if prefix + c in state_dict]
        no_norm = [k for k in with_conv if prefix + k not in state_dict]
        if with_conv and no_norm:
            others = sorted(k[len(prefix):] for k in state_dict if k.startswith(prefix) and
                            'norm' not in k and not k.endswith('conv1.weight'))[:4]
            raise CheckpointMismatchError(
                f'{type(self).__name__}: the checkpoint has the conv weights of {len(with_conv)} '
                f'conv+norm pairs but not the norms of {len(no_norm)} of them (e.g. '
                f'{prefix}{no_norm[0]}); loading it would leave those norms at init, so nothing '
                f'was loaded. Its other keys look like: {others}. Convert it to detectron2 names '
                f'(stem.conv1.norm.*, resK.J.convI.norm.*, resK.J.shortcut.norm.*) first.')


def _freeze(module: nn.Module) -> None:
    if hasattr(module, 'freeze'):
        module.freeze()
        return
    for p in module.parameters():
        p.requires_grad = False
    FrozenBatchNorm2d.convert_frozen_batchnorm(module)


def _to_detectron2_names(state_dict, prefix: str) -> None:
    """Rename, in place, the keys under ``prefix`` from caffe2 (``res2_0_branch2a_w``) or
    mmpretrain/torchvision names (``layer1.0.bn1``) to detectron2's."""
    own = {k[len(prefix):]: k for k in state_dict if k.startswith(prefix)}
    if not own or any(k.startswith('stem.') or _D2_STAGE.match(k) for k in own):
        return
    sub = {k: state_dict[full] for k, full in own.items()}
    if is_caffe2_resnet(sub):
        renamed = caffe2_to_detectron2(sub)
    elif any(k.startswith(('conv1.', 'layer1.')) for k in sub):
        renamed = {new: sub[old] for old, new in rename_mmpretrain_to_d2(sub).items() if new}
    else:
        return
    for full in own.values():
        del state_dict[full]
    state_dict.update({prefix + k: v for k, v in renamed.items()})


_D2_STAGE = re.compile(r'^res\d\.')

__all__ = ['BasicStem', 'BasicBlock', 'BottleneckBlock', 'CNNBlockBase', 'Conv2d', 'get_norm',
           'make_stage', 'make_default_stages', 'make_resnet_stages', 'Detectron2ResNet',
           'd2_norm_cfg']
