"""RegNet (https://arxiv.org/abs/2003.13678): ResNeXt-style stages whose widths follow a
quantized linear rule.

An arch ``(w0, wa, wm, depth, group_w, bot_mul)`` gives block ``j`` the width
``w0 + wa * j``, snapped to ``w0 * wm^k`` and to a multiple of 8; consecutive blocks of equal width
form a stage. Parameter names are mmpretrain 1.2.0's RegNet (``conv1``/``bn1`` stem,
``layer1..layer4`` of mmpretrain ResNeXt bottlenecks), so its checkpoints load with
``prefix='backbone'``; timm ``regnetx_*`` checkpoints load through
:mod:`mmbackbones.checkpoint.converters.timm_regnet`.
"""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from ..layers.mmcv_bricks import build_conv_layer, build_norm_layer
from mmengine.model.weight_init import constant_init
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_choice,
                                 check_frozen_stages, check_positive_int, check_size_limit,
                                 normalize_out_indices)
from ..base import BaseBackbone
from ..host_args import take_host_args
from ..layer_decay import resnet_layer_depth
from ..layers.norm import check_norm_cfg
from ..layers.resnet_blocks import Bottleneck, ResLayer, stage_dcn_and_plugins

_ARCH_KEYS = ('w0', 'wa', 'wm', 'group_w', 'depth', 'bot_mul')


def generate_regnet(w0: float, wa: float, wm: float, depth: int,
                    divisor: int = 8) -> Tuple[List[int], int]:
    """Per-block widths and the number of distinct widths (stages), as mmpretrain computes
    them (float64 numpy, round-half-even)."""
    widths_cont = np.arange(depth) * wa + w0
    ks = np.round(np.log(widths_cont / w0) / np.log(wm))
    widths = np.round(np.divide(w0 * np.power(wm, ks), divisor)) * divisor
    return widths.astype(int).tolist(), len(np.unique(widths))


def stages_from_blocks(widths: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Run-length encode the per-block widths: ``(stage_widths, stage_blocks)``."""
    stage_widths, stage_blocks = [], []
    for w in widths:
        if stage_widths and stage_widths[-1] == w:
            stage_blocks[-1] += 1
        else:
            stage_widths.append(w)
            stage_blocks.append(1)
    return stage_widths, stage_blocks


def adjust_width_group(widths: Sequence[int], bot_muls: Sequence[float],
                       group_widths: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Make each stage's bottleneck width a multiple of its group width (which is capped at the
    bottleneck width)."""
    bottleneck = [int(w * b) for w, b in zip(widths, bot_muls)]
    group_widths = [min(g, wb) for g, wb in zip(group_widths, bottleneck)]
    bottleneck = [int(round(wb / g) * g) for wb, g in zip(bottleneck, group_widths)]
    widths = [int(wb / b) for wb, b in zip(bottleneck, bot_muls)]
    return widths, group_widths


def _check_arch(arch: dict) -> dict:
    if not isinstance(arch, dict):
        raise TypeError(f'RegNet arch must be one of the names in RegNet.arch_settings or a '
                        f'dict with keys {list(_ARCH_KEYS)}, got {arch!r}')
    missing = [k for k in _ARCH_KEYS if k not in arch]
    unknown = sorted(set(arch) - set(_ARCH_KEYS))
    if missing or unknown:
        raise KeyError(f'RegNet arch dict: missing keys {missing}, unknown keys {unknown}; '
                       f'expected exactly {list(_ARCH_KEYS)}')
    w0, wa, wm = arch['w0'], arch['wa'], arch['wm']
    check_size_limit("arch['w0']", w0, MAX_WIDTH)
    check_size_limit("arch['depth']", arch['depth'], MAX_BLOCKS)
    check_size_limit("arch['group_w']", arch['group_w'], MAX_WIDTH)
    if w0 % 8:
        raise ValueError(f"arch['w0'] must be a multiple of 8, got {w0!r}")
    if not isinstance(wa, (int, float)) or wa < 0:
        raise ValueError(f"arch['wa'] (width slope) must be >= 0, got {wa!r}")
    if not isinstance(wm, (int, float)) or wm <= 1:
        raise ValueError(f"arch['wm'] (width multiplier) must be > 1, got {wm!r}")
    if not isinstance(arch['bot_mul'], (int, float)) or arch['bot_mul'] <= 0:
        raise ValueError(f"arch['bot_mul'] must be > 0, got {arch['bot_mul']!r}")
    return arch


# mmdet's RegNet arguments that mmpretrain's has not
MMDET_ONLY = dict.fromkeys(('dcn', 'stage_with_dcn', 'plugins', 'pretrained'), ('mmdet', ))


@MODELS.register_module()
class RegNet(BaseBackbone):
    """RegNetX backbone.

    Stem: 3x3 stride-2 conv to ``stem_channels``, BN, ReLU. Then up to four stages of bottleneck
    blocks (``expansion=1``, grouped 3x3 convs of ``group_w`` channels per group), each starting
    with stride ``strides[i]``; the default outputs are at strides 4, 8, 16, 32. For
    ``regnetx_400mf`` the stage widths are 32, 64, 160, 384; ``regnetx_4.0gf`` 80, 240, 560, 1360.

    Args:
        arch (str | dict): a name in ``arch_settings`` or a dict with keys ``w0`` (initial
            width), ``wa`` (slope), ``wm`` (quantization multiplier), ``group_w``, ``depth``
            (blocks in all), ``bot_mul`` (bottleneck ratio).
        in_channels (int): input image channels.
        stem_channels (int): width of the stem.
        base_channels (int): kept for mmpretrain signature compatibility (unused, as there).
        strides, dilations (Sequence[int]): per stage; one entry per stage of the arch.
        out_indices (int | Sequence[int]): stages to return (0-based, negative from the end).
        style (str): ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (on the first 1x1).
        deep_stem (bool): not supported (as in mmpretrain); must be False.
        avg_down (bool): average-pool instead of strided 1x1 conv on the shortcut.
        frozen_stages (int): -1 none, 0 the stem, k the stem and stages 1..k.
        conv_cfg, norm_cfg (dict): layer configs. norm_eval (bool): BN in eval mode in training.
        with_cp (bool): gradient checkpointing of each block.
        zero_init_residual (bool): zero the last norm of each block at ``init_weights()``
            (skipped when loading a pretrained checkpoint).
        init_cfg (dict | list[dict], optional): mmengine init config.

    The signature, defaults and meanings are mmpretrain's. mmdet's RegNet is the twin
    ``mmbackbones.mmdet.RegNet`` (default ``out_indices=(0, 1, 2, 3)``, ``norm_eval=True``).
    mmdet's own arguments still work here for now, with one warning: ``dcn``/``stage_with_dcn``
    (deformable 3x3 convs in the flagged stages; needs the full mmcv), ``plugins`` (block
    plugins built by mmcv's ``build_plugin_layer``), ``pretrained`` (the deprecated spelling of
    ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``).

    Input ``(N, in_channels, H, W)``; output ``i`` is ``(N, C_i, ~H / s_i, ~W / s_i)``.
    """

    arch_settings: Dict[str, dict] = {
        'regnetx_400mf': dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=22, bot_mul=1.0),
        'regnetx_800mf': dict(w0=56, wa=35.73, wm=2.28, group_w=16, depth=16, bot_mul=1.0),
        'regnetx_1.6gf': dict(w0=80, wa=34.01, wm=2.25, group_w=24, depth=18, bot_mul=1.0),
        'regnetx_3.2gf': dict(w0=88, wa=26.31, wm=2.25, group_w=48, depth=25, bot_mul=1.0),
        'regnetx_4.0gf': dict(w0=96, wa=38.65, wm=2.43, group_w=40, depth=23, bot_mul=1.0),
        'regnetx_6.4gf': dict(w0=184, wa=60.83, wm=2.07, group_w=56, depth=17, bot_mul=1.0),
        'regnetx_8.0gf': dict(w0=80, wa=49.56, wm=2.88, group_w=120, depth=23, bot_mul=1.0),
        'regnetx_12gf': dict(w0=168, wa=73.36, wm=2.37, group_w=112, depth=19, bot_mul=1.0),
    }

    def __init__(self, arch: Union[str, dict], in_channels: int = 3, stem_channels: int = 32,
                 base_channels: int = 32, strides: Sequence[int] = (2, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Union[int, Sequence[int]] = (3,), style: str = 'pytorch',
                 deep_stem: bool = False, avg_down: bool = False, frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), norm_eval: bool = False,
                 with_cp: bool = False, zero_init_residual: bool = True, init_cfg=None,
                 **mmdet_args):
        take_host_args(self, mmdet_args, MMDET_ONLY)
        dcn, plugins = mmdet_args.get('dcn'), mmdet_args.get('plugins')
        stage_with_dcn = mmdet_args.get('stage_with_dcn', (False, False, False, False))
        with warnings.catch_warnings():
            if getattr(type(self), 'host', None) is None:  # take_host_args warned once
                warnings.simplefilter('ignore', UserWarning)
            init_cfg = self._pretrained_to_init_cfg(mmdet_args.get('pretrained'), init_cfg)
        super().__init__(init_cfg=init_cfg)
        stage_widths, stage_blocks, group_widths, bot_muls = self._resolve_arch(arch)
        num_stages = len(stage_widths)
        for name, value in (('strides', strides), ('dilations', dilations)):
            if not isinstance(value, (list, tuple)) or len(value) != num_stages:
                raise ValueError(f'{name} must have one entry per stage ({num_stages} for this '
                                 f'arch), got {value!r}')
            for v in value:
                check_positive_int(f'each of {name}', v)
        check_choice('style', style, ('pytorch', 'caffe'))
        if deep_stem:
            raise ValueError('deep_stem=True is not supported by RegNet (nor by mmpretrain\'s '
                             'RegNet); use deep_stem=False')
        for name, value in (('avg_down', avg_down), ('norm_eval', norm_eval),
                            ('with_cp', with_cp), ('zero_init_residual', zero_init_residual)):
            check_bool(name, value)

        self.stage_widths, self.group_widths = stage_widths, group_widths
        self.stage_blocks = stage_blocks
        self.bottleneck_ratio = bot_muls
        self.depth = sum(stage_blocks)
        self.num_stages = num_stages
        self.strides, self.dilations = tuple(strides), tuple(dilations)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.stem_channels = check_positive_int('stem_channels', stem_channels)
        self.base_channels = base_channels
        self.out_indices = normalize_out_indices(out_indices, num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages, num_stages)
        self.style, self.avg_down, self.with_cp = style, avg_down, with_cp
        self.conv_cfg, self.norm_cfg = conv_cfg, check_norm_cfg(norm_cfg)
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        # mmdet's deformable 3x3 convs and block plugins, per stage
        extras = stage_dcn_and_plugins(num_stages, dcn, stage_with_dcn, plugins)
        self.dcn, self.stage_with_dcn, self.plugins = dcn, tuple(stage_with_dcn), plugins

        self._make_stem()
        out_strides = self._make_res_layers(extras)
        self.feat_dim = stage_widths[max(self.out_indices)]
        self._set_outputs([stage_widths[i] for i in self.out_indices],
                          [out_strides[i] for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def _resolve_arch(self, arch):
        """``arch`` (a name or a dict of RegNet parameters) -> per-stage widths, block counts,
        group widths and bottleneck ratios (the quantised RegNet design rules)."""
        if isinstance(arch, str):
            check_choice('arch', arch, self.arch_settings)
            arch = self.arch_settings[arch]
        self.arch = dict(_check_arch(arch))
        widths, num_stages = generate_regnet(self.arch['w0'], self.arch['wa'], self.arch['wm'],
                                             self.arch['depth'])
        stage_widths, stage_blocks = stages_from_blocks(widths)
        check_size_limit("arch (the widest stage w0/wa/wm give)", max(stage_widths), MAX_WIDTH)
        if not 1 <= num_stages <= 4:
            raise ValueError(f'RegNet arch {self.arch} gives {num_stages} stages (widths '
                             f'{stage_widths}); RegNet supports 1 to 4')
        bot_muls = [self.arch['bot_mul']] * num_stages
        stage_widths, group_widths = adjust_width_group(
            stage_widths, bot_muls, [self.arch['group_w']] * num_stages)
        return stage_widths, stage_blocks, group_widths, bot_muls

    def _make_stem(self) -> None:
        """3x3 stride-2 conv, norm, ReLU (``conv1``, ``bn1``/``gn1``, ...: mmpretrain's names)."""
        self.conv1 = build_conv_layer(self.conv_cfg, self.in_channels, self.stem_channels,
                                      kernel_size=3, stride=2, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, self.stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)

    def _make_res_layers(self, extras: List[dict]) -> List[int]:
        """``layer1``.. up to the last stage in ``out_indices``; returns their strides."""
        self.res_layers: List[str] = []
        prev, stride = self.stem_channels, 2
        out_strides = []
        for i in range(max(self.out_indices) + 1):
            width = self.stage_widths[i]
            bottleneck_width = int(round(width * self.bottleneck_ratio[i]))
            layer = ResLayer(
                block=Bottleneck, num_blocks=self.stage_blocks[i], in_channels=prev,
                out_channels=width, expansion=1, stride=self.strides[i],
                dilation=self.dilations[i], style=self.style, avg_down=self.avg_down,
                with_cp=self.with_cp, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                base_channels=width, groups=bottleneck_width // self.group_widths[i],
                width_per_group=self.group_widths[i], **extras[i])
            self.add_module(f'layer{i + 1}', layer)
            self.res_layers.append(f'layer{i + 1}')
            prev = width
            stride *= self.strides[i]
            out_strides.append(stride)
        return out_strides

    @property
    def norm1(self) -> nn.Module:
        return self._modules[self.norm1_name]

    def conv_norm_pairs(self) -> List[Tuple[str, str]]:
        """The stem's (conv, norm) pair, for ``fuse()`` (the blocks declare their own)."""
        return [('conv1', self.norm1_name)]

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` for layer-wise lr decay, mmpretrain's ResNet numbering, which RegNet inherits there
        (``layer_decay.resnet_layer_depth``; mmpretrain raises for RegNet depths, here each
        block of stages 2-3 is one depth)."""
        return resnet_layer_depth(param_name, prefix, self.stage_blocks)

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        # A throwaway container: the stem's layers stay registered under their own names.
        stem = nn.ModuleList([self.conv1, self.norm1])
        return [stem, *(getattr(self, name) for name in self.res_layers)]

    def init_weights(self):
        super().init_weights()
        if self.zero_init_residual and not self.loads_pretrained():
            # Each residual branch starts as zero, so each block starts as its shortcut.
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    constant_init(module.last_norm, 0)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the ResNet's scriptable form (the same stem and
        bottlenecks, no max pool), returning a list of the same maps."""
        from ..layers.scripting import ScriptableResNet
        return ScriptableResNet(self)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        x = self.relu(self._modules[self.norm1_name](self.conv1(x)))
        outs = []
        for name in self.res_layers:
            x = self._modules[name](x)
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices)
