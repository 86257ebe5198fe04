"""InternImage (`InternImage: Exploring Large-Scale Vision Foundation Models with Deformable
Convolutions <https://arxiv.org/abs/2211.05778>`_).

The deformable operator, DCNv3, runs in pure PyTorch (``F.grid_sample``,
:mod:`mmbackbones.models.layers.dcnv3`): upstream's CUDA extension is not needed, on any device.

Parameter names are the official ones (OpenGVLab/InternImage, which detrex's ``InternImage``
keeps): ``patch_embed.conv1|norm1.1|conv2|norm2.1``, ``levels.{i}.blocks.{j}.norm1.0|norm2.0``,
``levels.{i}.blocks.{j}.dcn.dw_conv.0|1.1|offset|mask|input_proj|output_proj``,
``levels.{i}.blocks.{j}.mlp.fc1|fc2``, ``gamma1|gamma2`` (layer scale),
``res_post_norm1|2.0`` and ``levels.2.post_norms.{k}.0`` (InternImage-H),
``levels.{i}.norm.0`` and ``levels.{i}.downsample.conv|norm.1``. detrex's checkpoints load as they
are; the official classification files (``conv_head``, ``head``, or InternImage-H's
``clip_projector``/``dcnv3_head_x3|x4``/``fc_norm``) through
:mod:`mmbackbones.checkpoint.converters.detrex_internimage`, which drops the head.

mmpretrain ships no InternImage (its ``projects/internimage_classification`` is not part of the
package): the arguments are the OpenMMLab spelling of the official ones, the variants the
official T/S/B/L/XL/H (``'tiny'`` ... ``'huge'``). detrex's signature is the twin
``mmbackbones.detrex.InternImage``.

Stage ``i`` has ``channels * 2 ** i`` channels and stride ``4 * 2 ** i``; a side ``s`` gives
``ceil(s / 2)`` after each stride-2 conv (any input size works).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_cfg_keys,
                                 check_choice, check_positive_int, check_rate,
                                 check_size_limit, normalize_out_indices)
from ..base import BaseBackbone
from ..layer_decay import strip_prefix
from ..layers.dcnv3 import ACTIVATIONS, DCNv3
from ..layers.internimage_blocks import InternImageBlock, StemLayer

_POST = dict(layer_scale=1e-5, post_norm=True)
arch_settings = {
    'tiny': dict(channels=64, depths=[4, 4, 18, 4], groups=[4, 8, 16, 32]),
    'small': dict(channels=80, depths=[4, 4, 21, 4], groups=[5, 10, 20, 40], **_POST),
    'base': dict(channels=112, depths=[4, 4, 21, 4], groups=[7, 14, 28, 56], **_POST),
    'large': dict(channels=160, depths=[5, 5, 22, 5], groups=[10, 20, 40, 80],
                  offset_scale=2.0, **_POST),
    'xlarge': dict(channels=192, depths=[5, 5, 24, 5], groups=[12, 24, 48, 96],
                   offset_scale=2.0, **_POST),
    'huge': dict(channels=320, depths=[6, 6, 32, 6], groups=[10, 20, 40, 80], dw_kernel_size=5,
                 res_post_norm=True, level2_post_norm=True,
                 level2_post_norm_block_ids=[5, 11, 17, 23, 29], center_feature_scale=True),
}
ARCH_KEYS = ('channels', 'depths', 'groups')
# optional arch keys and their defaults (the official constructor's)
ARCH_DEFAULTS = dict(mlp_ratio=4.0, offset_scale=1.0, layer_scale=None, post_norm=False,
                     dw_kernel_size=None, level2_post_norm=False,
                     level2_post_norm_block_ids=None, res_post_norm=False,
                     center_feature_scale=False)
_FLAGS = ('post_norm', 'level2_post_norm', 'res_post_norm', 'center_feature_scale')


def _positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f'{name} must be a positive number, got {value!r}')
    return float(value)


def parse_arch(arch) -> dict:
    """A variant name or dict -> the validated dict with every optional key filled."""
    if isinstance(arch, str):
        check_choice('arch', arch, tuple(arch_settings))
        arch = arch_settings[arch]
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be one of {sorted(arch_settings)} or a dict with keys '
                        f'{list(ARCH_KEYS)} (and optionally {list(ARCH_DEFAULTS)}), got '
                        f'{arch!r}')
    missing = [k for k in ARCH_KEYS if k not in arch]
    unknown = sorted(set(arch) - set(ARCH_KEYS) - set(ARCH_DEFAULTS))
    if missing or unknown:
        raise KeyError(f'arch dict: missing keys {missing}, unknown keys {unknown}; it takes '
                       f'{list(ARCH_KEYS)} and optionally {list(ARCH_DEFAULTS)}')
    out = {**ARCH_DEFAULTS, **arch}
    channels = out['channels'] = check_size_limit('arch["channels"]', arch['channels'],
                                                  MAX_WIDTH)
    depths, groups = arch['depths'], arch['groups']
    for key, values in (('depths', depths), ('groups', groups)):
        if not isinstance(values, (list, tuple)) or not values or len(values) != len(depths):
            raise ValueError(f'arch["{key}"] must be a non-empty list with one entry per stage '
                             f'({len(depths) if isinstance(depths, (list, tuple)) else "?"}), '
                             f'got {values!r}')
        for v in values:
            check_size_limit(f'arch["{key}"] entry', v, MAX_BLOCKS if key == 'depths' else
                             MAX_WIDTH)
        out[key] = list(values)
    if channels % 2:
        raise ValueError(f'arch["channels"] must be even (the stem\'s first conv has '
                         f'channels // 2), got {channels}')
    for i, g in enumerate(groups):
        if (channels * 2 ** i) % g:
            raise ValueError(f'arch["groups"][{i}] = {g} must divide stage {i}\'s '
                             f'{channels * 2 ** i} channels')
    for flag in _FLAGS:
        check_bool(f'arch["{flag}"]', out[flag])
    out['mlp_ratio'] = _positive_number('arch["mlp_ratio"]', out['mlp_ratio'])
    out['offset_scale'] = _positive_number('arch["offset_scale"]', out['offset_scale'])
    if out['layer_scale'] is not None:
        out['layer_scale'] = _positive_number('arch["layer_scale"]', out['layer_scale'])
    if out['dw_kernel_size'] is not None:
        k = check_positive_int('arch["dw_kernel_size"]', out['dw_kernel_size'])
        if k % 2 == 0:
            raise ValueError(f'arch["dw_kernel_size"] must be odd (same-size depthwise conv), '
                             f'got {k}')
    ids = out['level2_post_norm_block_ids']
    if ids is not None:
        if len(depths) < 3 or not isinstance(ids, (list, tuple)) or any(
                isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < depths[2]
                for i in ids):
            raise ValueError(f'arch["level2_post_norm_block_ids"] must be a list of block '
                             f'indices of stage 2 (0..{depths[2] - 1 if len(depths) > 2 else "-"})'
                             f', got {ids!r}')
        out['level2_post_norm_block_ids'] = list(ids)
    return out


@MODELS.register_module()
class InternImage(BaseBackbone):
    """InternImage backbone (official parameter names; see the module docstring).

    Args:
        arch (str | dict): a key of ``arch_settings`` (``'tiny'``, ``'small'``, ``'base'``,
            ``'large'``, ``'xlarge'``, ``'huge'``) or ``dict(channels, depths, groups)`` plus
            optional ``mlp_ratio``, ``offset_scale``, ``layer_scale`` (None: no layer scale),
            ``post_norm``, ``dw_kernel_size``, ``level2_post_norm``,
            ``level2_post_norm_block_ids``, ``res_post_norm``, ``center_feature_scale``.
        in_channels (int): input image channels.
        drop_rate (float): dropout after the stem and in the MLPs.
        drop_path_rate (float): stochastic depth over all blocks.
        drop_path_type (str): ``'linear'`` (increasing to ``drop_path_rate``) or ``'uniform'``.
        act_cfg (dict): ``dict(type='GELU' | 'ReLU' | 'SiLU')``.
        norm_cfg (dict): ``dict(type='LN' | 'BN')``, the stem's, the downsampling layers' and
            DCNv3's depthwise-conv norm (the blocks' norms are always LayerNorms, as upstream).
        out_indices (int | Sequence[int]): stages (0-based) to return; only the stages up to the
            last one are built.
        frozen_stages (int): ``-1`` nothing, ``0`` the stem, ``k`` the stem and stages
            ``0..k-1`` (each with its downsampling layer).
        norm_eval (bool): keep BatchNorms (``norm_cfg`` BN) in eval mode while training.
        with_cp (bool): gradient checkpointing of each block.
        init_cfg: mmengine init config.

    Outputs: a tuple of ``(N, channels * 2 ** i, H_i, W_i)`` maps in ``out_indices`` order,
    named ``stage{i + 1}``; each is stage ``i``'s normed output before its downsampling.
    """

    arch_settings = arch_settings

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 drop_rate: float = 0., drop_path_rate: float = 0.2,
                 drop_path_type: str = 'linear', act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'),
                 out_indices: Union[int, Sequence[int]] = (3, ), frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        settings = self.arch = parse_arch(arch)
        depths = settings['depths']
        self.num_stages = len(depths)
        self.in_channels = check_positive_int('in_channels', in_channels)
        check_choice('drop_path_type', drop_path_type, ('linear', 'uniform'))
        act = check_cfg_keys('act_cfg', act_cfg, ('type', ))
        norm = check_cfg_keys('norm_cfg', norm_cfg, ('type', ))
        check_choice('act_cfg["type"]', act.get('type'), tuple(ACTIVATIONS))
        check_choice('norm_cfg["type"]', norm.get('type'), ('LN', 'BN'))
        self.norm_eval = check_bool('norm_eval', norm_eval)
        self.with_cp = check_bool('with_cp', with_cp)
        rate = check_rate('drop_path_rate', drop_path_rate)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        self.depths = depths
        dims = [settings['channels'] * 2 ** i for i in range(self.num_stages)]
        self.patch_embed = StemLayer(in_channels, dims[0], act['type'], norm['type'])
        self.pos_drop = nn.Dropout(check_rate('drop_rate', drop_rate))
        dpr = torch.linspace(0, rate, sum(depths), device='cpu').tolist()
        if drop_path_type == 'uniform':
            dpr = [rate] * len(dpr)
        last = max(self.out_indices)
        self.levels = nn.ModuleList()
        for i in range(last + 1):
            start = sum(depths[:i])
            ids = settings['level2_post_norm_block_ids'] \
                if settings['level2_post_norm'] and i == 2 else None
            self.levels.append(InternImageBlock(
                dims[i], depths[i], settings['groups'][i], downsample=i < last,
                drop_path=dpr[start:start + depths[i]], post_norm_block_ids=ids,
                center_feature_scale=settings['center_feature_scale'],
                post_norm=settings['post_norm'], norm=norm['type'],
                mlp_ratio=settings['mlp_ratio'], drop=drop_rate, act=act['type'],
                layer_scale=settings['layer_scale'], offset_scale=settings['offset_scale'],
                with_cp=self.with_cp, dw_kernel_size=settings['dw_kernel_size'],
                res_post_norm=settings['res_post_norm']))
        self._reset_parameters()
        self._set_outputs([dims[i] for i in self.out_indices],
                          [4 * 2 ** i for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def _reset_parameters(self) -> None:
        """Upstream's init: trunc-normal (std 0.02) Linears with zero bias, unit LayerNorms,
        then DCNv3's own (zero offsets and mask logits, Xavier projections)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, DCNv3):
                m.reset_parameters()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        """The stem, then stage ``i`` with its downsampling layer (which feeds stage
        ``i + 1``): freezing stage ``k`` leaves the input of stage ``k + 1`` fixed."""
        return [self.patch_embed, *self.levels]

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, sum(depths) + 2)`` for layer-wise lr decay, the numbering of the official
        detection/segmentation ``CustomLayerDecayOptimizerConstructor``: 0 the stem, one depth
        per block (``levels.i.blocks.j``: ``sum(depths[:i]) + j + 1``; InternImage-H's
        ``post_norms.k`` counted as block ``k``, as there), a stage's norm and downsampling
        with the first block of the next stage (the last stage's with its own first block),
        the last depth anything else (a head)."""
        num_depths = sum(self.depths) + 2
        name = strip_prefix(param_name, prefix)
        if name is None:
            return num_depths - 1, num_depths
        parts = name.split('.')
        if parts[0] == 'patch_embed':
            return 0, num_depths
        if parts[0] != 'levels' or len(parts) < 3:
            return num_depths - 1, num_depths
        stage = int(parts[1])
        if parts[2] in ('norm', 'downsample'):
            return 1 + sum(self.depths[:min(stage + 1, self.num_stages - 1)]), num_depths
        return sum(self.depths[:stage]) + int(parts[3]) + 1, num_depths

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(N, in_channels, H, W)`` -> tuple of ``(N, C_i, H_i, W_i)`` maps."""
        self.check_input(x)
        x = self.pos_drop(self.patch_embed(x))
        outs = {}
        for i, level in enumerate(self.levels):
            x, out = level(x)
            if i in self.out_indices:
                outs[i] = out.permute(0, 3, 1, 2).contiguous()
        return tuple(outs[i] for i in self.out_indices)


__all__ = ['InternImage', 'arch_settings', 'parse_arch']
