"""PoolFormer (MetaFormer with average pooling as token mixer), mmpretrain's arguments and
parameter names (``patch_embed.proj``, ``network.N.M.{norm1,token_mixer,norm2,mlp.fc1,mlp.fc2,
layer_scale_1,layer_scale_2}``, ``norm{i}``), so mmpretrain checkpoints load with
``prefix='backbone.'`` and mmseg's ``fpn_poolformer_s12`` config builds with ``mmcls.PoolFormer``.

``self.network`` is mmpretrain's list of positions: stage 1, downsample, stage 2, downsample,
stage 3, downsample, stage 4 (a downsample exists only where the width changes).
``out_indices`` counts those positions (``(0, 2, 4, 6)``: the four stages, strides 4..32);
outputs are named ``stage{k}`` (stages) and ``downsample{k}`` (the one leading to stage
``k + 1``) and come back in ``out_indices`` order, each through its own norm ``norm{i}``.
"""
from typing import List, Optional, Tuple

import torch
from ..layers.mmcv_bricks import build_activation_layer
from torch import nn

from ...registry import MODELS
from ...utils.validation import (check_bool, check_choice, check_frozen_stages,
                                 check_positive_int, check_rate, normalize_out_indices)
from ..base import BaseBackbone
from ..layers.drop import DropPath
from ..layers.norm import build_norm, check_norm_cfg

# name: (blocks per stage, widths, MLP ratios, layer-scale init)
ARCHS = {
    's12': dict(layers=[2, 2, 6, 2], embed_dims=[64, 128, 320, 512]),
    's24': dict(layers=[4, 4, 12, 4], embed_dims=[64, 128, 320, 512]),
    's36': dict(layers=[6, 6, 18, 6], embed_dims=[64, 128, 320, 512],
                layer_scale_init_value=1e-6),
    'm36': dict(layers=[6, 6, 18, 6], embed_dims=[96, 192, 384, 768],
                layer_scale_init_value=1e-6),
    'm48': dict(layers=[8, 8, 24, 8], embed_dims=[96, 192, 384, 768],
                layer_scale_init_value=1e-6),
}
ARCH_DEFAULTS = dict(mlp_ratios=[4, 4, 4, 4], layer_scale_init_value=1e-5)


class PatchEmbed(nn.Module):
    """A strided conv (``proj``): ``(N, C_in, H, W)`` -> ``(N, C_out, H / stride, W / stride)``."""

    def __init__(self, patch_size: int, stride: int, padding: int, in_chans: int,
                 embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=stride, padding=padding)
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class Pooling(nn.Module):
    """The token mixer: ``avgpool(x) - x`` (padding not counted), shape kept."""

    def __init__(self, pool_size: int = 3):
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2,
                                 count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) - x


class Mlp(nn.Module):
    """Two 1x1 convs with an activation and dropout, ``(N, C, H, W)`` kept."""

    def __init__(self, dim: int, hidden: int, act_cfg: dict, drop: float):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class PoolFormerBlock(nn.Module):
    """``x + s1 * mix(norm1(x))`` then ``x + s2 * mlp(norm2(x))`` with layer scales."""

    def __init__(self, dim: int, pool_size: int, mlp_ratio: float, norm_cfg: dict,
                 act_cfg: dict, drop: float, drop_path: float, layer_scale_init_value: float):
        super().__init__()
        self.norm1 = build_norm(norm_cfg, dim)[1]
        self.token_mixer = Pooling(pool_size)
        self.norm2 = build_norm(norm_cfg, dim)[1]
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_cfg, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
        self.layer_scale_2 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.token_mixer(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


def _check_arch(arch) -> dict:
    if isinstance(arch, str):
        check_choice('arch', arch, tuple(ARCHS))
        arch = ARCHS[arch]
    if not isinstance(arch, dict) or not {'layers', 'embed_dims'} <= set(arch):
        raise ValueError(f'arch must be one of {tuple(ARCHS)} or a dict with "layers" and '
                         f'"embed_dims" (optional "mlp_ratios", "layer_scale_init_value"), '
                         f'got {arch!r}')
    arch = dict(ARCH_DEFAULTS, **arch)
    for key in ('layers', 'embed_dims', 'mlp_ratios'):
        value = arch[key]
        if not isinstance(value, (list, tuple)) or len(value) != len(arch['layers']) or \
                not all(isinstance(v, (int, float)) and v > 0 for v in value):
            raise ValueError(f'arch[{key!r}] must be a list of {len(arch["layers"])} positive '
                             f'numbers (one per stage), got {value!r}')
    return arch


@MODELS.register_module()
class PoolFormer(BaseBackbone):
    """PoolFormer, "MetaFormer is Actually What You Need for Vision" (Yu et al., CVPR 2022).

    Args:
        arch (str | dict): ``'s12'``, ``'s24'``, ``'s36'``, ``'m36'``, ``'m48'`` or a dict with
            ``layers`` and ``embed_dims`` (optional ``mlp_ratios``, ``layer_scale_init_value``).
        pool_size (int): average-pooling window of the token mixer.
        norm_cfg (dict): norm of the blocks and outputs (default GroupNorm with one group).
        act_cfg (dict): activation of the MLPs.
        in_patch_size, in_stride, in_pad (int): the stem conv (7, 4, 2).
        down_patch_size, down_stride, down_pad (int): the downsampling convs (3, 2, 1).
        drop_rate (float): dropout in the MLPs.
        drop_path_rate (float): stochastic depth, rising linearly over all blocks.
        out_indices (int | Sequence[int]): positions of ``self.network`` to return (0, 2, 4, 6
            the stages; 1, 3, 5 the downsamples); default ``-1``, the last stage.
        frozen_stages (int): ``-1`` nothing; ``0`` (mmpretrain's default) the stem
            ``patch_embed``; ``k`` the stem and stages ``1..k`` with the downsamples before
            them and their output norms.
        norm_eval (bool): keep every BatchNorm in eval mode while training.
        in_channels (int): input channels.
        init_cfg (dict | list, optional): mmengine init config.

    Input ``(N, in_channels, H, W)``; output a tuple of ``(N, C_i, H / s_i, W / s_i)``.
    """

    arch_settings = {name: dict(ARCH_DEFAULTS, **arch) for name, arch in ARCHS.items()}

    def __init__(self,
                 arch='s12',
                 pool_size: int = 3,
                 norm_cfg: dict = dict(type='GN', num_groups=1),
                 act_cfg: dict = dict(type='GELU'),
                 in_patch_size: int = 7,
                 in_stride: int = 4,
                 in_pad: int = 2,
                 down_patch_size: int = 3,
                 down_stride: int = 2,
                 down_pad: int = 1,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 out_indices=-1,
                 frozen_stages: int = 0,
                 norm_eval: bool = False,
                 in_channels: int = 3,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = _check_arch(arch)
        for name, value in (('pool_size', pool_size), ('in_patch_size', in_patch_size),
                            ('in_stride', in_stride), ('down_patch_size', down_patch_size),
                            ('down_stride', down_stride), ('in_channels', in_channels)):
            check_positive_int(name, value)
        norm_cfg = check_norm_cfg(norm_cfg)
        check_rate('drop_rate', drop_rate)
        check_rate('drop_path_rate', drop_path_rate)
        self.norm_eval = check_bool('norm_eval', norm_eval)
        self.in_channels, self.arch = in_channels, arch
        layers, dims = list(arch['layers']), list(arch['embed_dims'])

        self.patch_embed = PatchEmbed(in_patch_size, in_stride, in_pad, in_channels, dims[0])
        # (name, channels, stride, stage) of each network position
        self._positions: List[Tuple[str, int, int, int]] = []
        stride = in_stride
        for i in range(len(layers)):
            self._positions.append((f'stage{i + 1}', dims[i], stride, i + 1))
            if i + 1 < len(layers) and dims[i] != dims[i + 1]:
                stride *= down_stride
                self._positions.append((f'downsample{i + 1}', dims[i + 1], stride, i + 2))
        self.out_indices = normalize_out_indices(out_indices, len(self._positions))

        total, network = sum(layers), []
        for i, num_blocks in enumerate(layers):
            start = sum(layers[:i])
            network.append(nn.Sequential(*[PoolFormerBlock(
                dims[i], pool_size, arch['mlp_ratios'][i], norm_cfg, act_cfg, drop_rate,
                drop_path_rate * (start + b) / max(total - 1, 1), arch['layer_scale_init_value'])
                for b in range(num_blocks)]))
            if i + 1 < len(layers) and dims[i] != dims[i + 1]:
                network.append(PatchEmbed(down_patch_size, down_stride, down_pad, dims[i],
                                          dims[i + 1]))
        # positions after the last requested one are not built
        self.network = nn.ModuleList(network[:max(self.out_indices) + 1])
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm(norm_cfg, self._positions[i][1])[1])
        self._set_outputs([self._positions[i][1] for i in self.out_indices],
                          [self._positions[i][2] for i in self.out_indices],
                          [self._positions[i][0] for i in self.out_indices])
        self.frozen_stages = check_frozen_stages(frozen_stages, len(layers))
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        """Index 0 the stem; index ``k`` stage ``k``, the downsample before it and the output
        norms of those positions."""
        groups = [[self.patch_embed]] + [[] for _ in self.arch['layers']]
        for i, module in enumerate(self.network):
            groups[self._positions[i][3]].append(module)
            if i in self.out_indices:
                groups[self._positions[i][3]].append(getattr(self, f'norm{i}'))
        return [nn.ModuleList(g) if g else None for g in groups]

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the patch embedding and the built positions in
        sequence, the outputs through their norms (``layers.scripting.ScriptableNormedStages``),
        a list of the same maps."""
        from ..layers.scripting import ScriptableNormedStages
        stages = [nn.Sequential(self.patch_embed, self.network[0]), *self.network[1:]]
        return ScriptableNormedStages(stages, [self._modules[f'norm{i}'] for i in self.out_indices],
                                      self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        x = self.patch_embed(x)
        outs = {}
        for i, module in enumerate(self.network):
            x = module(x)
            if i in self.out_indices:
                outs[i] = getattr(self, f'norm{i}')(x)
        return tuple(outs[i] for i in self.out_indices)

    def extra_repr(self) -> str:
        return f'layers={self.arch["layers"]}, ' + super().extra_repr()
