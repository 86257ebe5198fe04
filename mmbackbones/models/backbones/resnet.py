"""ResNet, ResNetV1c, ResNetV1d, ResNeXt (mmpretrain names) and a detectron2/detrex-style API.

Two front ends over the same blocks (``layers.resnet_blocks``):

* **OpenMMLab style** (``ResNet``, ``ResNetV1c``, ``ResNetV1d``, ``ResNeXt``): parameter and
  buffer names are exactly mmpretrain 1.2.0's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
  ``stem.0.conv``/``stem.0.bn`` for the deep stem), so an mmpretrain/mmcls checkpoint loads with
  ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone')``. ``forward`` returns a
  tuple in ``out_indices`` order; outputs are named ``res2``..``res5`` (stage ``i`` ->
  ``res{i+1}``), strides follow ``strides`` (``dilations`` keep the resolution).
* **detectron2/detrex style** (``BasicStem``, ``make_default_stages``/``make_stage``,
  ``Detectron2ResNet``): ``forward`` returns ``{name: tensor}``; ``freeze_at`` as detectron2.
  Parameter names: ``stem.conv1``, ``stem.bn1``, ``res2.0.conv1``, ``res2.0.bn1``, ...,
  ``res2.0.downsample.0`` (conv) / ``.1`` (norm); checkpoints with the mmpretrain names above
  (``conv1``, ``bn1``, ``layer{k}``) also load (renamed on load), so one converter from
  detectron2's format to mmpretrain names serves both front ends.

How the two styles map (DC5 = ``res5_dilation=2``; output stride 8 needs the OpenMMLab style)::

    detectron2 / detrex                             OpenMMLab (this module)
    BasicStem(in_channels=3, out_channels=64,       ResNet(in_channels=3, stem_channels=64,
              norm='FrozenBN')                             norm_cfg=dict(type='FrozenBN'),
    make_default_stages(depth=50,                          depth=50,
        stride_in_1x1=True,                                style='caffe',  (False: 'pytorch')
        res5_dilation=2,                                   strides=(1, 2, 2, 1),
                                                           dilations=(1, 1, 1, 2),
        num_groups=32, width_per_group=4)           ResNeXt(groups=32, width_per_group=4, ...)
    out_features=['res3', 'res4', 'res5']                  out_indices=(1, 2, 3),
    freeze_at=2                                            frozen_stages=1)
    norm='GN'                                       norm_cfg=dict(type='GN', num_groups=32)

In configs the detectron2 model is ``dict(type='Detectron2ResNet', stem=dict(norm='FrozenBN'),
stages=dict(depth=50, stride_in_1x1=True), out_features=[...], freeze_at=2)`` (dicts are the
keyword arguments of ``BasicStem`` and ``make_default_stages``).

Deploy: ``model.fuse()`` folds every eval-mode BN/FrozenBN into its conv, after which CPU
inference runs each conv+ReLU and conv+add+ReLU as one oneDNN kernel (``layers.fuse``);
``channels_last=True`` runs the convs in NHWC (outputs are then channels-last tensors with the
same values). Both combine.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model.weight_init import constant_init
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_frozen_stages, check_positive_int,
                                 check_rate, normalize_out_indices)
from ..base import BaseBackbone
from ..layers.conv_norm_act import ConvNormAct
from ..layers.fuse import conv_relu
from ..layers.norm import check_norm_cfg
from ..layers.resnet_blocks import (STYLES, BasicBlock, Bottleneck, ResLayer, get_expansion,
                                    stage_dcn_and_plugins)

STEM_STRIDE = 4  # stride-2 conv (or deep stem) + stride-2 max pool
# mmpretrain's/mmdet's default init when no init_cfg (nor pretrained) is given
DEFAULT_INIT_CFG = [dict(type='Kaiming', layer=['Conv2d']),
                    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]


def stem_max_pool(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``pool(x)``; for CPU inference on an NCHW tensor the pool runs in channels-last layout
    and the result is turned back to NCHW: the same values, several times faster than ATen's
    NCHW max-pool kernel (about 5% of a ResNet-50 forward otherwise)."""
    if x.device.type == 'cpu' and x.dim() == 4 and x.is_contiguous() and \
            not torch.is_grad_enabled():
        return pool(x.contiguous(memory_format=torch.channels_last)).contiguous()
    return pool(x)


def _check_int_tuple(name: str, value, length: int, length_name: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f'{name} must be a list/tuple of {length} positive ints, got {value!r}')
    if len(value) != length:
        raise ValueError(f'{name} must have one value per stage ({length_name}={length}), got '
                         f'{len(value)} values: {tuple(value)!r}')
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must contain positive ints, got {tuple(value)!r}')
    return tuple(value)


@MODELS.register_module()
class ResNet(BaseBackbone):
    """Deep residual network (https://arxiv.org/abs/1512.03385), mmpretrain-compatible.

    Input ``(N, in_channels, H, W)``. Output ``i`` (stage ``s = out_indices[i]``) is
    ``(N, base_channels * expansion * 2**s, H / out_strides[i], W / out_strides[i])`` (sides
    rounded up), named ``res{s+2}``; with the defaults ``res2..res5`` at strides 4, 8, 16, 32 and
    256/512/1024/2048 channels (64/128/256/512 for depth 18/34).

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input image channels.
        stem_channels: output channels of the stem.
        base_channels: middle channels of the first stage (its output has
            ``base_channels * expansion``).
        expansion: output/middle channel ratio of a block (default: 1 basic, 4 bottleneck).
        num_stages: 1..4 stages.
        strides: stride of the first block of each stage.
        dilations: dilation of each stage (DC5: ``strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)``,
            output stride 8: ``strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)``).
        out_indices: stages to return, in this order.
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (on the first 1x1).
        deep_stem: three 3x3 convs instead of the 7x7 stem (ResNet-C).
        avg_down: average-pool then 1x1 conv in the downsample branch (ResNet-D).
        frozen_stages: -1 nothing, 0 the stem, k the stem and stages 1..k.
        conv_cfg / norm_cfg: mmcv conv and norm configs (BN, SyncBN, GN, FrozenBN).
        norm_eval: keep every BatchNorm in eval mode during training.
        with_cp: gradient checkpointing in every block.
        zero_init_residual: zero the last norm of every residual branch at init (skipped when
            ``init_cfg`` loads a checkpoint).
        drop_path_rate: stochastic depth, rising linearly over all the blocks of the depth.
        channels_last: run in NHWC memory format (weights converted, input converted in
            ``forward``).
        out_names: names of the outputs (default ``res{s+2}``).
        dcn / stage_with_dcn: mmdet's deformable 3x3 conv in the bottlenecks of the flagged
            stages (``dict(type='DCN'|'DCNv2', deform_groups=1)``; needs the full mmcv).
        plugins: mmdet's block plugins (``[dict(cfg=dict(type='ContextBlock', ratio=1/16),
            stages=(False, True, True, True), position='after_conv3')]``), built by mmcv.
        multi_grid: mmseg's per-block dilations of the last stage (DeepLabV3, e.g. (1, 2, 4)).
        contract_dilation: mmseg's: the first block of a dilated stage uses half the dilation.
        pretrained: mmdet's/mmseg's deprecated spelling of
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` (warns; refused together
            with another ``init_cfg``).
        init_cfg: mmengine init config (default: Kaiming convs, unit norms).

    ``stem_channels=None`` means ``base_channels`` (mmdet's default). The deep stem's keys are
    ``stem.{0,1,2}.conv|bn``; mmdet/mmseg (mmcv-era) checkpoints with ``stem.0/1/3/4/6/7`` are
    converted on load (``checkpoint.converters.openmmlab_resnet``).
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int = 50,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = 64,
                 base_channels: int = 64,
                 expansion: Optional[int] = None,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 drop_path_rate: float = 0.0,
                 channels_last: bool = False,
                 out_names: Optional[Sequence[str]] = None,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[Sequence[dict]] = None,
                 multi_grid: Optional[Sequence[int]] = None,
                 contract_dilation: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        init_cfg = self._pretrained_to_init_cfg(pretrained, init_cfg)
        super().__init__(init_cfg=DEFAULT_INIT_CFG if init_cfg is None else init_cfg)
        check_choice('depth', depth, tuple(self.arch_settings))
        check_positive_int('in_channels', in_channels)
        if stem_channels is None:  # mmdet's default: as wide as base_channels
            stem_channels = base_channels
        check_positive_int('stem_channels', stem_channels)
        check_positive_int('base_channels', base_channels)
        if isinstance(num_stages, bool) or not isinstance(num_stages, int) or \
                not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be an int in 1..4, got {num_stages!r}')
        self.strides = _check_int_tuple('strides', strides, num_stages, 'num_stages')
        self.dilations = _check_int_tuple('dilations', dilations, num_stages, 'num_stages')
        self.out_indices = normalize_out_indices(out_indices, num_stages)
        check_choice('style', style, STYLES)
        for name, flag in (('deep_stem', deep_stem), ('avg_down', avg_down),
                           ('norm_eval', norm_eval), ('with_cp', with_cp),
                           ('zero_init_residual', zero_init_residual),
                           ('channels_last', channels_last),
                           ('contract_dilation', contract_dilation)):
            check_bool(name, flag)
        if deep_stem and stem_channels % 2:
            raise ValueError(f'deep_stem halves stem_channels in its first convs: stem_channels '
                             f'must be even, got {stem_channels}')
        self.frozen_stages = check_frozen_stages(frozen_stages, num_stages)
        check_norm_cfg(norm_cfg)
        drop_path_rate = check_rate('drop_path_rate', drop_path_rate)

        self.depth, self.in_channels = depth, in_channels
        self.stem_channels, self.base_channels = stem_channels, base_channels
        self.num_stages, self.style = num_stages, style
        self.deep_stem, self.avg_down = deep_stem, avg_down
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.norm_eval, self.with_cp = norm_eval, with_cp
        self.zero_init_residual, self.channels_last = zero_init_residual, channels_last
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]
        self.expansion = get_expansion(self.block, expansion)
        # mmdet's dcn/plugins and mmseg's multi_grid (last stage only)/contract_dilation
        extras = stage_dcn_and_plugins(num_stages, dcn, stage_with_dcn, plugins)
        extras[-1]['multi_grid'] = multi_grid
        for extra in extras:
            extra['contract_dilation'] = contract_dilation
        self.dcn, self.stage_with_dcn, self.plugins = dcn, tuple(stage_with_dcn), plugins
        self.multi_grid, self.contract_dilation = multi_grid, contract_dilation

        self._make_stem_layer(in_channels, stem_channels)

        # Rates rise over every block of the depth, so building fewer stages does not change the
        # rates of the ones built (as in mmpretrain).
        rates = torch.linspace(0, drop_path_rate, sum(stage_blocks)).tolist()
        num_built = max(self.out_indices) + 1  # nothing after the last output is built
        self.res_layers: List[str] = []
        stage_in, stage_out = stem_channels, base_channels * self.expansion
        channels, strides = [], []
        stride = STEM_STRIDE
        for i, num_blocks in enumerate(self.stage_blocks[:num_built]):
            layer = self.make_res_layer(
                block=self.block, num_blocks=num_blocks, in_channels=stage_in,
                out_channels=stage_out, expansion=self.expansion, stride=self.strides[i],
                dilation=self.dilations[i], style=style, avg_down=avg_down, with_cp=with_cp,
                conv_cfg=conv_cfg, norm_cfg=norm_cfg, drop_path_rate=rates[:num_blocks],
                **extras[i])
            rates = rates[num_blocks:]
            name = f'layer{i + 1}'
            self.add_module(name, layer)
            self.res_layers.append(name)
            stride *= self.strides[i]
            channels.append(stage_out)
            strides.append(stride)
            stage_in, stage_out = stage_out, stage_out * 2
        self.feat_dim = channels[-1]

        if out_names is None:
            out_names = [f'res{i + 2}' for i in self.out_indices]
        elif not isinstance(out_names, (list, tuple)) or len(out_names) != len(self.out_indices) \
                or not all(isinstance(n, str) for n in out_names):
            raise ValueError(f'out_names must be a list of {len(self.out_indices)} strings (one '
                             f'per out_indices entry {self.out_indices}), got {out_names!r}')
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices], out_names)
        # forward collects stage outputs by index, then returns them in out_indices order
        self._out_set = frozenset(self.out_indices)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self._freeze_stages()

    # ----- construction --------------------------------------------------------------------------
    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(**kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
            half = stem_channels // 2
            cfg = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
            self.stem = nn.Sequential(
                ConvNormAct(in_channels, half, 3, stride=2, padding=1, **cfg),
                ConvNormAct(half, half, 3, stride=1, padding=1, **cfg),
                ConvNormAct(half, stem_channels, 3, stride=1, padding=1, **cfg))
        else:
            self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels,
                                          kernel_size=7, stride=2, padding=3, bias=False)
            self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    @property
    def norm1(self) -> nn.Module:
        return self._modules[self.norm1_name]

    def conv_norm_pairs(self):
        return [] if self.deep_stem else [('conv1', self.norm1_name)]

    def after_fuse(self) -> None:
        self._stem_folded = isinstance(self._modules[self.norm1_name], nn.Identity)

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        stem = self.stem if self.deep_stem else nn.ModuleList([self.conv1, self.norm1])
        return [stem] + [self._modules[name] for name in self.res_layers]

    def init_weights(self):
        super().init_weights()
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            return  # the checkpoint's norms stand; zero-init is for training from scratch
        if self.zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    constant_init(module.last_norm, 0)

    # ----- forward -------------------------------------------------------------------------------
    _stem_folded = False  # set by after_fuse(): the stem norm is folded into conv1

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.deep_stem:
            x = self.stem(x)
        elif self._stem_folded and not self.training:
            x = conv_relu(self.conv1, x)
        else:
            x = self.relu(self._modules[self.norm1_name](self.conv1(x)))
        return stem_max_pool(self.maxpool, x)

    def forward(self, x: torch.Tensor):
        """``(N, in_channels, H, W)`` -> tuple of feature maps in ``out_indices`` order."""
        self.check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.forward_stem(x)
        feats = {}
        for i, name in enumerate(self.res_layers):
            x = self._modules[name](x)
            if i in self._out_set:
                feats[i] = x
        return tuple(feats[i] for i in self.out_indices)


def _fixed_flags(cls_name: str, kwargs: dict, **fixed) -> dict:
    for key, value in fixed.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f'{cls_name} always uses {key}={value}; got {key}={kwargs[key]!r} '
                             f'(use ResNet to choose it)')
        kwargs[key] = value
    return kwargs


@MODELS.register_module()
class ResNetV1c(ResNet):
    """ResNet-C (https://arxiv.org/abs/1812.01187): the 7x7 stem conv becomes three 3x3 convs."""

    def __init__(self, depth: int = 50, **kwargs):
        super().__init__(depth, **_fixed_flags('ResNetV1c', kwargs, deep_stem=True,
                                               avg_down=False))


@MODELS.register_module()
class ResNetV1d(ResNet):
    """ResNet-D (https://arxiv.org/abs/1812.01187): deep stem, and the downsample branch
    average-pools before a stride-1 1x1 conv."""

    def __init__(self, depth: int = 50, **kwargs):
        super().__init__(depth, **_fixed_flags('ResNetV1d', kwargs, deep_stem=True,
                                               avg_down=True))


@MODELS.register_module()
class ResNeXt(ResNet):
    """ResNeXt (https://arxiv.org/abs/1611.05431): grouped 3x3 convs in every bottleneck.

    ``groups=32, width_per_group=4`` is 32x4d: the first stage's 3x3 conv has
    ``groups * width_per_group = 128`` channels, doubling with each stage. ``base_width`` is
    mmdet's/mmseg's name for ``width_per_group`` (give either; default 4). Other arguments as
    :class:`ResNet`; depth 50, 101 or 152. Unlike mmdet's ResNeXt (``groups=1``), the default
    ``groups`` is mmpretrain's 32.
    """

    arch_settings = {k: v for k, v in ResNet.arch_settings.items() if k >= 50}

    def __init__(self, depth: int = 50, groups: int = 32, width_per_group: Optional[int] = None,
                 base_width: Optional[int] = None, **kwargs):
        self.groups = check_positive_int('groups', groups)
        if width_per_group is not None and base_width is not None and \
                width_per_group != base_width:
            raise ValueError(f'width_per_group={width_per_group!r} (mmpretrain) and '
                             f'base_width={base_width!r} (mmdet/mmseg) are one setting and '
                             f'contradict each other; give one of them')
        width = width_per_group if width_per_group is not None else base_width
        name = 'width_per_group' if base_width is None else 'base_width'
        self.width_per_group = check_positive_int(name, 4 if width is None else width)
        super().__init__(depth, **kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(groups=self.groups, width_per_group=self.width_per_group,
                        base_channels=self.base_channels, **kwargs)


# =================================================================================================
# detectron2 / detrex style
# =================================================================================================
_D2_NORMS = {
    'FrozenBN': dict(type='FrozenBN'),
    'BN': dict(type='BN'),
    'SyncBN': dict(type='SyncBN'),
    'naiveSyncBN': dict(type='SyncBN'),
    'GN': dict(type='GN', num_groups=32),
}


def d2_norm_cfg(norm: Union[str, dict]) -> dict:
    """detectron2's ``norm`` string (``'FrozenBN'``, ``'BN'``, ``'SyncBN'``, ``'GN'``) as an mmcv
    ``norm_cfg``; a dict is taken as an ``norm_cfg`` already."""
    if isinstance(norm, dict):
        return check_norm_cfg(dict(norm))
    if isinstance(norm, str) and norm in _D2_NORMS:
        return dict(_D2_NORMS[norm])
    raise ValueError(f'norm must be one of {", ".join(repr(n) for n in _D2_NORMS)} or an mmcv '
                     f'norm_cfg dict, got {norm!r} (a ResNet needs a norm layer)')


class BasicStem(nn.Module):
    """detectron2's stem: 7x7 conv stride 2, norm, ReLU, 3x3 max pool stride 2.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / 4, W / 4)``. Parameters ``conv1``,
    ``bn1`` (mmpretrain's stem names).
    """

    stride = STEM_STRIDE

    def __init__(self, in_channels: int = 3, out_channels: int = 64,
                 norm: Union[str, dict] = 'FrozenBN'):
        super().__init__()
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.out_channels = check_positive_int('out_channels', out_channels)
        self.conv1 = build_conv_layer(None, in_channels, out_channels, kernel_size=7, stride=2,
                                      padding=3, bias=False)
        self.norm1_name, norm1 = build_norm_layer(d2_norm_cfg(norm), out_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    _folded = False

    def conv_norm_pairs(self):
        return [('conv1', self.norm1_name)]

    def after_fuse(self) -> None:
        self._folded = isinstance(self._modules[self.norm1_name], nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._folded and not self.training:
            x = conv_relu(self.conv1, x)
        else:
            x = self.relu(self._modules[self.norm1_name](self.conv1(x)))
        return stem_max_pool(self.maxpool, x)


_D2_BLOCKS = {'BasicBlock': BasicBlock, 'BottleneckBlock': Bottleneck, 'Bottleneck': Bottleneck}


def make_d2_stage(block_class, num_blocks: int, *, in_channels: int, out_channels: int,
                  stride: int = 1, stride_per_block: Optional[Sequence[int]] = None,
                  dilation: int = 1, norm: Union[str, dict] = 'FrozenBN',
                  stride_in_1x1: bool = False, bottleneck_channels: Optional[int] = None,
                  num_groups: int = 1, with_cp: bool = False,
                  drop_path_rate: Union[float, Sequence[float]] = 0.0) -> ResLayer:
    """One stage with detectron2's ``ResNet.make_stage`` arguments (our blocks).

    ``block_class`` is ``BasicBlock``/``Bottleneck`` (or detectron2's names as strings);
    ``stride_per_block`` must stride only the first block.
    """
    if isinstance(block_class, str):
        check_choice('block_class', block_class, tuple(_D2_BLOCKS))
        block_class = _D2_BLOCKS[block_class]
    if block_class not in (BasicBlock, Bottleneck):
        raise ValueError(f'block_class must be BasicBlock or Bottleneck, got {block_class!r}')
    if stride_per_block is not None:
        stride_per_block = list(stride_per_block)
        if len(stride_per_block) != num_blocks or any(s != 1 for s in stride_per_block[1:]):
            raise ValueError(f'stride_per_block must be [s] + [1] * {num_blocks - 1} (only the '
                             f'first block strides), got {stride_per_block}')
        stride = stride_per_block[0]
    kwargs = dict(style='caffe' if check_bool('stride_in_1x1', stride_in_1x1) else 'pytorch')
    if block_class is Bottleneck:
        bottleneck_channels = bottleneck_channels or out_channels // 4
        check_positive_int('num_groups', num_groups)
        if out_channels % bottleneck_channels or bottleneck_channels % num_groups:
            raise ValueError(f'bottleneck_channels ({bottleneck_channels}) must divide '
                             f'out_channels ({out_channels}) and be divisible by num_groups '
                             f'({num_groups})')
        kwargs.update(expansion=out_channels // bottleneck_channels, groups=num_groups,
                      width_per_group=bottleneck_channels // num_groups,
                      base_channels=bottleneck_channels)
    return ResLayer(block_class, num_blocks, in_channels, out_channels, stride=stride,
                    dilation=dilation, norm_cfg=d2_norm_cfg(norm), with_cp=with_cp,
                    drop_path_rate=drop_path_rate, **kwargs)


def make_default_stages(depth: int = 50, stride_in_1x1: bool = False,
                        norm: Union[str, dict] = 'FrozenBN', res5_dilation: int = 1,
                        num_groups: int = 1, width_per_group: int = 64,
                        in_channels: int = 64, res2_out_channels: Optional[int] = None,
                        with_cp: bool = False, drop_path_rate: float = 0.0) -> List[ResLayer]:
    """The four stages res2..res5 of a detectron2 ResNet of ``depth`` (18..152).

    ``in_channels`` is the stem's output channels. ``res5_dilation=2`` gives DC5 (res5 keeps
    stride 16). ``num_groups``/``width_per_group`` make a ResNeXt (detectron2's meaning: res2's
    bottleneck has ``num_groups * width_per_group`` channels). ``drop_path_rate`` rises linearly
    over all blocks.
    """
    check_choice('depth', depth, tuple(ResNet.arch_settings))
    check_choice('res5_dilation', res5_dilation, (1, 2))
    block, blocks_per_stage = ResNet.arch_settings[depth]
    basic = block is BasicBlock
    if basic and (num_groups != 1 or width_per_group != 64):
        raise ValueError(f'depth {depth} uses basic blocks: num_groups/width_per_group do not '
                         f'apply (got {num_groups}, {width_per_group})')
    out_channels = res2_out_channels or (64 if basic else 256)
    bottleneck = num_groups * width_per_group
    rates = torch.linspace(0, check_rate('drop_path_rate', drop_path_rate),
                           sum(blocks_per_stage)).tolist()
    stages = []
    for i, num_blocks in enumerate(blocks_per_stage):
        dilation = res5_dilation if i == 3 else 1
        stride = 1 if i == 0 or dilation == 2 else 2
        stages.append(make_d2_stage(
            block, num_blocks, in_channels=in_channels, out_channels=out_channels,
            stride=stride, dilation=dilation, norm=norm, stride_in_1x1=stride_in_1x1,
            bottleneck_channels=None if basic else bottleneck, num_groups=num_groups,
            with_cp=with_cp, drop_path_rate=rates[:num_blocks]))
        rates = rates[num_blocks:]
        in_channels, out_channels, bottleneck = out_channels, out_channels * 2, bottleneck * 2
    return stages


# The spelling: make_stage(depth=50, stride_in_1x1=False, norm='FrozenBN', res5_dilation=1)
make_stage = make_default_stages


def _without_type(kwargs: Optional[dict], expected: str) -> dict:
    kwargs = dict(kwargs or {})
    kind = kwargs.pop('type', expected)
    if kind != expected:
        raise ValueError(f'expected type={expected!r} (or no type) here, got {kind!r}')
    return kwargs


def _stage_out(stage: nn.Module):
    """(out_channels, stride) of a stage: a ResLayer or any Sequential of our blocks."""
    blocks = list(stage.children()) if isinstance(stage, nn.Sequential) else []
    ok = bool(blocks) and all(isinstance(getattr(b, 'stride', None), int) and
                              isinstance(getattr(b, 'out_channels', None), int) for b in blocks)
    if not ok:
        raise TypeError(f'a stage must be a Sequential of blocks with int out_channels and stride '
                        f'(see make_default_stages), got {type(stage).__name__}')
    stride = 1
    for block in blocks:
        stride *= block.stride
    return blocks[-1].out_channels, stride


@MODELS.register_module()
class Detectron2ResNet(BaseBackbone):
    """A ResNet written the detectron2/detrex way: ``stem`` + ``stages``, dict output.

    Args:
        stem: a :class:`BasicStem` or a dict of its keyword arguments.
        stages: a list of stages (from :func:`make_default_stages`) or a dict of
            ``make_default_stages`` keyword arguments. They are named ``res2``, ``res3``, ...
        out_features: names to return, among ``'stem'`` and the stage names (default: the last
            stage). Stages after the last requested one are dropped.
        freeze_at: detectron2's meaning: 0 nothing, 1 the stem, 2 the stem and res2, ...
            (frozen parts: no gradients, norms in eval mode).
        num_classes: detectron2's classification head is not supported (must be None).

    ``forward(x)`` returns ``{name: (N, C, H / stride, W / stride)}`` in ``out_features`` order;
    ``output_shape()`` gives each name's channels and stride.
    """

    make_default_stages = staticmethod(make_default_stages)
    make_stage = staticmethod(make_d2_stage)

    def __init__(self, stem: Union[nn.Module, dict, None] = None,
                 stages: Union[Sequence[nn.Module], dict, None] = None,
                 out_features: Optional[Sequence[str]] = None, freeze_at: int = 0,
                 num_classes: Optional[int] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_classes is not None:
            raise ValueError(f'num_classes must be None (a backbone has no classifier head), '
                             f'got {num_classes!r}')
        if stem is None or isinstance(stem, dict):
            stem = BasicStem(**_without_type(stem, 'BasicStem'))
        if not isinstance(stem, nn.Module):
            raise TypeError(f'stem must be a BasicStem (or nn.Module with out_channels and '
                            f'stride) or a dict of BasicStem arguments, got {type(stem).__name__}')
        if stages is None or isinstance(stages, dict):
            stages = make_default_stages(**_without_type(stages, 'make_default_stages'))
        if not isinstance(stages, (list, tuple, nn.ModuleList)) or not stages:
            raise TypeError(f'stages must be a non-empty list of stages or a dict of '
                            f'make_default_stages arguments, got {stages!r}')
        names = ['stem'] + [f'res{i + 2}' for i in range(len(stages))]
        if out_features is None:
            out_features = [names[-1]]
        if isinstance(out_features, str) or not isinstance(out_features, (list, tuple)) or \
                not out_features:
            raise TypeError(f'out_features must be a non-empty list of names among {names}, '
                            f'got {out_features!r}')
        for feature in out_features:
            check_choice('out_features', feature, names)
        if len(set(out_features)) != len(out_features):
            raise ValueError(f'out_features repeats a name: {list(out_features)}')
        if isinstance(freeze_at, bool) or not isinstance(freeze_at, int) or \
                not 0 <= freeze_at <= len(stages) + 1:
            raise ValueError(f'freeze_at must be an int in 0..{len(stages) + 1} (0 nothing, 1 the '
                             f'stem, 2 stem and res2, ...), got {freeze_at!r}')
        self.out_features = list(out_features)
        self.freeze_at = freeze_at
        self.in_channels = getattr(stem, 'in_channels', None)

        self.stem = stem
        channels = {'stem': stem.out_channels}
        strides = {'stem': getattr(stem, 'stride', STEM_STRIDE)}
        last = max(names.index(f) for f in self.out_features)
        self.stage_names: List[str] = []
        for i, stage in enumerate(stages[:max(last, 0)]):  # nothing after the last output
            name = names[i + 1]
            out_ch, stride = _stage_out(stage)
            self.add_module(name, stage)
            self.stage_names.append(name)
            channels[name] = out_ch
            strides[name] = strides[names[i]] * stride
        self._out_feature_set = frozenset(self.out_features)
        self._set_outputs([channels[f] for f in self.out_features],
                          [strides[f] for f in self.out_features], self.out_features)
        self._out_feature_channels, self._out_feature_strides = channels, strides
        self.frozen_stages = freeze_at - 1
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.stem] + [self._modules[n] for n in self.stage_names]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``(N, C, H, W)`` -> ``{name: feature}`` for every name in ``out_features``."""
        self.check_input(x)
        feats = {}
        x = self.stem(x)
        if 'stem' in self._out_feature_set:
            feats['stem'] = x
        for name in self.stage_names:
            x = self._modules[name](x)
            if name in self._out_feature_set:
                feats[name] = x
        return {name: feats[name] for name in self.out_features}

    def forward_dict(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return self(x)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # Accept mmpretrain names (conv1, bn1, layer{k}) for this model's stem/res{k+1}.
        if not any(k.startswith(prefix + 'stem.') or k.startswith(prefix + 'res')
                   for k in state_dict):
            renames = {'conv1.': 'stem.conv1.', 'bn1.': 'stem.bn1.', 'gn1.': 'stem.gn1.'}
            renames.update({f'layer{i}.': f'res{i + 1}.' for i in range(1, 5)})
            for key in [k for k in state_dict if k.startswith(prefix)]:
                rest = key[len(prefix):]
                for old, new in renames.items():
                    if rest.startswith(old):
                        state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)
                        break
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


__all__ = ['ResNet', 'ResNetV1c', 'ResNetV1d', 'ResNeXt', 'BasicStem', 'make_stage',
           'make_default_stages', 'make_d2_stage', 'Detectron2ResNet', 'd2_norm_cfg']
