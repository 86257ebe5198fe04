"""Cross Stage Partial networks: CSPDarkNet, CSPResNet, CSPResNeXt.

CSPNet (https://arxiv.org/abs/1911.11929) splits each stage's features in two halves: one half
runs through the residual blocks, the other skips them, and a 1x1 conv merges both. Parameter
names and shapes are mmpretrain 1.2.0's (``stem``, ``stages.<i>.downsample_conv``,
``.expand_conv``, ``.blocks.<j>``, ``.atfer_blocks_conv`` (sic), ``.final_conv``), so its
checkpoints load with ``prefix='backbone'``.

Positional arguments follow mmpretrain's signatures; ``drop_path_rate`` and ``arch`` come last.
``conv_cfg`` applies to every conv (mmpretrain applies it to the blocks and CSPResNet's stem only;
with the default ``None`` both are plain ``Conv2d``).

Outputs are ``stage1..stageN`` (``out_indices`` ``0..N-1``). ``frozen_stages`` counts as
mmpretrain's CSPNet: ``-1`` nothing, ``k`` the stem and ``stages[0..k]`` (``k <= N - 1``).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_positive_int,
                                 check_rate, normalize_out_indices)
from ..base import BaseBackbone
from ..host_args import check_stage_count, to_contract_count
from ..layer_decay import stage_layer_depth
from ..layers.norm import check_norm_cfg
from ..layers.conv_norm_act import ConvNormAct
from ..layers.drop import DropPath
from ..layers.resnet_blocks import Bottleneck

_BN = dict(type='BN', eps=1e-5)
_LEAKY = dict(type='LeakyReLU', inplace=True)
_ARCH_KEYS = ('in_channels', 'out_channels', 'num_blocks', 'expand_ratio', 'bottle_ratio',
              'has_downsampler', 'down_growth', 'block_args')


# ----- blocks ------------------------------------------------------------------------------------
class DarknetBottleneck(nn.Module):
    """1x1 conv to ``out_channels / expansion``, 3x3 conv back to ``out_channels``, plus the input.

    ``(N, in_channels, H, W) -> (N, out_channels, H, W)``; the identity is added only when
    ``in_channels == out_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 2,
                 drop_path_rate: float = 0., conv_cfg=None, norm_cfg=_BN, act_cfg=_LEAKY):
        super().__init__()
        hidden = int(out_channels / expansion)
        self.conv1 = ConvNormAct(in_channels, hidden, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg)
        self.conv2 = ConvNormAct(hidden, out_channels, 3, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg)
        self.add_identity = in_channels == out_channels
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop_path(self.conv2(self.conv1(x)))
        return out + x if self.add_identity else out


# CSPResNet(X)t use the ResNet(X)t bottleneck at stride 1 with an identity shortcut.
_BLOCKS = {'darknet': DarknetBottleneck, 'resnet': Bottleneck, 'resnext': Bottleneck}


class CSPStage(nn.Module):
    """One CSP stage.

    ``downsample_conv`` (3x3, stride 2, or identity) -> ``expand_conv`` (1x1 to
    ``down_channels * expand_ratio``) -> split the channels in halves ``xa``, ``xb`` ->
    ``blocks(xb)`` -> ``atfer_blocks_conv`` -> concat ``(xa, xb)`` -> ``final_conv`` (1x1 to
    ``out_channels``). ``(N, in_channels, H, W) -> (N, out_channels, H/s, W/s)``, ``s`` 2 with a
    downsampler (rounding up), else 1.
    """

    def __init__(self, block: str, in_channels: int, out_channels: int, num_blocks: int,
                 has_downsampler: bool = True, down_growth: bool = False,
                 expand_ratio: float = 0.5, bottle_ratio: float = 2,
                 block_dpr: Sequence[float] = (), block_args: Optional[dict] = None,
                 conv_cfg=None, norm_cfg=_BN, act_cfg=_LEAKY):
        super().__init__()
        down_channels = out_channels if down_growth else in_channels
        if has_downsampler:
            # mmpretrain's CSPResNeXt groups this conv like its blocks (32 groups)
            self.downsample_conv = ConvNormAct(
                in_channels, down_channels, 3, stride=2, groups=32 if block == 'resnext' else 1,
                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        else:
            self.downsample_conv = nn.Identity()
        exp_channels = int(down_channels * expand_ratio)
        if exp_channels % 2:
            raise ValueError(f'a CSP stage splits its expanded channels in two halves, but '
                             f'{down_channels} * expand_ratio {expand_ratio} = {exp_channels} '
                             f'is odd')
        # Only the darknet variant activates the expand conv (as mmpretrain does).
        self.expand_conv = ConvNormAct(down_channels, exp_channels, 1, conv_cfg=conv_cfg,
                                       norm_cfg=norm_cfg,
                                       act_cfg=act_cfg if block == 'darknet' else None)
        half = exp_channels // 2
        block_cls = _BLOCKS[block]
        block_dpr = list(block_dpr) or [0.] * num_blocks
        self.blocks = nn.Sequential(*[
            block_cls(half, half, expansion=bottle_ratio, drop_path_rate=block_dpr[i],
                      conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                      **(block_args or {}))
            for i in range(num_blocks)])
        self.atfer_blocks_conv = ConvNormAct(half, half, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                             act_cfg=act_cfg)
        self.final_conv = ConvNormAct(2 * half, out_channels, 1, conv_cfg=conv_cfg,
                                      norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stride = 2 if has_downsampler else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand_conv(self.downsample_conv(x))
        xa, xb = x.chunk(2, dim=1)
        xb = self.atfer_blocks_conv(self.blocks(xb))
        return self.final_conv(torch.cat((xa, xb), dim=1))


# ----- backbones ---------------------------------------------------------------------------------
def _expand_arch(arch: dict, cls_name: str) -> Dict[str, tuple]:
    """Per-stage tuples from an arch dict whose values are scalars or per-stage sequences."""
    if not isinstance(arch, dict):
        raise TypeError(f'{cls_name} arch must be an int depth or a dict, got {arch!r}')
    unknown = sorted(set(arch) - set(_ARCH_KEYS))
    missing = [k for k in ('in_channels', 'out_channels', 'num_blocks') if k not in arch]
    if unknown or missing:
        raise KeyError(f'{cls_name} arch dict: unknown keys {unknown}, missing keys {missing}; '
                       f'allowed keys are {list(_ARCH_KEYS)}')
    if not isinstance(arch['in_channels'], (list, tuple)) or not arch['in_channels']:
        raise TypeError(f"{cls_name} arch['in_channels'] must be a non-empty list/tuple with one "
                        f"entry per stage, got {arch['in_channels']!r}")
    num_stages = len(arch['in_channels'])
    defaults = dict(expand_ratio=0.5, bottle_ratio=2, has_downsampler=True, down_growth=False,
                    block_args=None)
    full = {}
    for key in _ARCH_KEYS:
        value = arch.get(key, defaults.get(key))
        if isinstance(value, (list, tuple)):
            if len(value) != num_stages:
                raise ValueError(f'{cls_name} arch[{key!r}] has {len(value)} entries but the '
                                 f'arch has {num_stages} stages (len(in_channels))')
            full[key] = tuple(value)
        else:
            full[key] = (value,) * num_stages
    return full


class _CSPNet(BaseBackbone):
    """A stem followed by CSP stages; subclasses give the arch table, the block and the stem."""

    arch_settings: Dict[int, dict] = {}
    block = 'darknet'
    default_depth = 0

    def __init__(self, depth=None, in_channels=3, out_indices=-1, frozen_stages=-1,
                 conv_cfg=None, norm_cfg=_BN, act_cfg=_LEAKY, norm_eval=False, init_cfg=None,
                 drop_path_rate=0., arch=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        self.depth = self._resolve_depth(depth, arch)
        self.arch = _expand_arch(self.arch_settings[self.depth] if isinstance(self.depth, int)
                                 else self.depth, name)
        self.num_stages = len(self.arch['in_channels'])
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        # mmpretrain's k freezes the stem and stages[0..k]: the contract's k + 1
        self.frozen_stages = to_contract_count(check_stage_count(frozen_stages, self.num_stages))
        self.norm_eval = check_bool('norm_eval', norm_eval)
        drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, check_norm_cfg(norm_cfg), act_cfg

        self.stem, stride = self._make_stem(in_channels)
        # Stochastic depth rises linearly over all blocks of the full network, built or not,
        # so truncating the network does not change the rates of the stages that remain.
        depths = list(self.arch['num_blocks'])
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).split(depths)
        num_built = max(self.out_indices) + 1
        stages, channels, strides = [], [], []
        for i in range(num_built):
            stage = CSPStage(self.block, **{k: v[i] for k, v in self.arch.items()},
                             block_dpr=dpr[i].tolist(), conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                             act_cfg=act_cfg)
            stride *= stage.stride
            stages.append(stage)
            channels.append(self.arch['out_channels'][i])
            strides.append(stride)
        self.stages = nn.Sequential(*stages)
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def _resolve_depth(self, depth, arch):
        """``depth`` (mmpretrain) and ``arch`` (older mmcls configs) name the same thing."""
        name = type(self).__name__
        if depth is not None and arch is not None and depth != arch:
            raise ValueError(f'{name} got depth={depth!r} and arch={arch!r}; they mean the same '
                             f'thing, give one of them (or equal values)')
        value = depth if depth is not None else arch
        if value is None:
            return self.default_depth
        if isinstance(value, dict):
            return value
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        return check_choice(f'{name} depth/arch', value, self.arch_settings)

    def _make_stem(self, in_channels: int):
        raise NotImplementedError

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` for layer-wise lr decay (mmpretrain's CSP nets have none): 0
        the stem, ``i + 1`` ``stages.i``, the last depth the rest (a head)."""
        return stage_layer_depth(param_name, prefix, self.num_stages)

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.stem, *self.stages]

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the stem and the stages in sequence
        (``layers.scripting.ScriptableStages``), a list of the same maps."""
        from ..layers.scripting import ScriptableStages
        return ScriptableStages(self.stem, self.stages, self.out_indices)

    def forward(self, x: torch.Tensor):
        """``(N, in_channels, H, W)`` -> one ``(N, C_i, ~H/s_i, ~W/s_i)`` map per out index."""
        self.check_input(x)
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices)


@MODELS.register_module()
class CSPDarkNet(_CSPNet):
    """CSP-DarkNet53 (YOLOv4's backbone).

    Stem: a stride-1 3x3 conv to 32 channels. Five stages, each halving the resolution, with
    64, 128, 256, 512, 1024 channels at strides 2, 4, 8, 16, 32; default output the last.

    Args:
        depth (int): 53 (the only depth). ``arch`` is accepted as another spelling.
        in_channels (int): input channels.
        out_indices (int | Sequence[int]): stages to return (0..4, negative from the end;
            default -1, the last, as mmpretrain's ``(4,)``; ``(3,)`` for CSPResNet/CSPResNeXt).
        frozen_stages (int): mmpretrain's count: -1 none, k the stem and ``stages[0..k]``
            (the attribute reads the contract's count of the same modules, ``k + 1``).
        drop_path_rate (float): our extra: stochastic depth of the last block.
        conv_cfg, norm_cfg, act_cfg (dict): layer configs (default BN and LeakyReLU(0.01)).
        norm_eval (bool): keep BatchNorm layers in eval mode while training.
        arch (int | dict): the depth, or a dict of per-stage settings (see ``arch_settings``).
    """
    arch_settings = {
        53: dict(in_channels=(32, 64, 128, 256, 512), out_channels=(64, 128, 256, 512, 1024),
                 num_blocks=(1, 2, 8, 8, 4), expand_ratio=(2, 1, 1, 1, 1),
                 bottle_ratio=(2, 1, 1, 1, 1), has_downsampler=True, down_growth=True),
    }
    block = 'darknet'
    default_depth = 53

    def __init__(self, depth=None, in_channels=3, out_indices=-1, frozen_stages=-1,
                 conv_cfg=None, norm_cfg=_BN, act_cfg=_LEAKY, norm_eval=False,
                 init_cfg=dict(type='Kaiming', layer='Conv2d', a=math.sqrt(5),
                               distribution='uniform', mode='fan_in', nonlinearity='leaky_relu'),
                 drop_path_rate=0., arch=None):
        super().__init__(depth=depth, in_channels=in_channels, out_indices=out_indices,
                         frozen_stages=frozen_stages, drop_path_rate=drop_path_rate,
                         conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         norm_eval=norm_eval, init_cfg=init_cfg, arch=arch)

    def _make_stem(self, in_channels):
        stem = ConvNormAct(in_channels, self.arch['in_channels'][0], 3, conv_cfg=self.conv_cfg,
                           norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        return stem, 1


@MODELS.register_module()
class CSPResNet(_CSPNet):
    """CSP-ResNet50.

    Stem: a 7x7 stride-2 conv and a 3x3 stride-2 max pool to 64 channels (``deep_stem``: three
    3x3 convs, the first with stride 2, no pool). Four stages with 128, 256, 512, 1024 channels
    at strides 4, 8, 16, 32 (2, 4, 8, 16 with ``deep_stem``); default output the last.
    Arguments as :class:`CSPDarkNet` (our extras ``drop_path_rate`` and ``arch`` included), plus
    ``deep_stem`` (bool).
    """
    arch_settings = {
        50: dict(in_channels=(64, 128, 256, 512), out_channels=(128, 256, 512, 1024),
                 num_blocks=(3, 3, 5, 2), expand_ratio=4, bottle_ratio=2,
                 has_downsampler=(False, True, True, True), down_growth=False),
    }
    block = 'resnet'
    default_depth = 50

    def __init__(self, depth=None, in_channels=3, out_indices=-1, frozen_stages=-1,
                 deep_stem=False, conv_cfg=None, norm_cfg=_BN, act_cfg=_LEAKY, norm_eval=False,
                 init_cfg=dict(type='Kaiming', layer='Conv2d'), drop_path_rate=0., arch=None):
        self.deep_stem = check_bool('deep_stem', deep_stem)
        super().__init__(depth=depth, in_channels=in_channels, out_indices=out_indices,
                         frozen_stages=frozen_stages, drop_path_rate=drop_path_rate,
                         conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         norm_eval=norm_eval, init_cfg=init_cfg, arch=arch)

    def _make_stem(self, in_channels):
        width = self.arch['in_channels'][0]
        cfgs = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        if self.deep_stem:
            return nn.Sequential(
                ConvNormAct(in_channels, width // 2, 3, stride=2, **cfgs),
                ConvNormAct(width // 2, width // 2, 3, **cfgs),
                ConvNormAct(width // 2, width, 3, **cfgs)), 2
        return nn.Sequential(ConvNormAct(in_channels, width, 7, stride=2, **cfgs),
                             nn.MaxPool2d(kernel_size=3, stride=2, padding=1)), 4


@MODELS.register_module()
class CSPResNeXt(CSPResNet):
    """CSP-ResNeXt50 (32 groups, 4 channels per group on a base width of 32).

    Same layout as :class:`CSPResNet` with 256, 512, 1024, 2048 channels at strides 4, 8, 16, 32
    and grouped 3x3 convs (also in the stride-2 downsampling convs).
    """
    arch_settings = {
        50: dict(in_channels=(64, 256, 512, 1024), out_channels=(256, 512, 1024, 2048),
                 num_blocks=(3, 3, 5, 2), expand_ratio=(4, 2, 2, 2), bottle_ratio=4,
                 has_downsampler=(False, True, True, True), down_growth=False,
                 # CSPNet narrows ResNeXt's base width from 64 to 32
                 block_args=dict(groups=32, width_per_group=4, base_channels=32)),
    }
    block = 'resnext'
    default_depth = 50
