"""FocalNet (`Focal Modulation Networks <https://arxiv.org/abs/2203.11926>`_).

Parameter names are the official ones (microsoft/FocalNet, which detrex's ``FocalNet`` keeps):
``patch_embed.proj|norm``, ``layers.{i}.blocks.{j}.norm1|norm2``,
``layers.{i}.blocks.{j}.modulation.f|h|proj|focal_layers.{k}.0|ln``,
``layers.{i}.blocks.{j}.mlp.fc1|fc2``, ``layers.{i}.blocks.{j}.gamma_1|gamma_2`` (layer scale),
``layers.{i}.downsample.proj|norm`` (the patch embedding after stage ``i``) and ``norm{i}`` (the
output norms), so detrex checkpoints load as they are and the official classification files
through :mod:`mmbackbones.checkpoint.converters.detrex_focalnet` (``norm`` -> ``norm{last}``,
classifier dropped).

mmpretrain has no FocalNet: the arguments are the OpenMMLab spelling of the official detection
backbone's (``in_channels``, ``drop_rate``, ``drop_path_rate``, ``out_indices``,
``frozen_stages``, ``with_cp``, ``norm_cfg``); the variants are timm's/the official names
(``'tiny_srf'``, ``'tiny_lrf'``, ..., ``'large_fl4'``, ``'huge_fl4'``). detrex's signature is the
twin ``mmbackbones.detrex.FocalNet``.

Any input size works (the patch embeddings pad right/bottom). Stage ``i`` has
``embed_dims * 2 ** i`` channels and stride ``4 * 2 ** i``; maps are kept as ``(N, H, W, C)``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_choice,
                                 check_positive_int, check_rate, check_size_limit,
                                 normalize_out_indices)
from ..base import BaseBackbone
from ..layers.drop import DropPath
from ..layers.norm import build_norm, check_norm_cfg


def _variant(embed_dims, depths, levels, windows=3, **flags):
    return dict(embed_dims=embed_dims, depths=depths, focal_levels=[levels] * 4,
                focal_windows=[windows] * 4, **flags)


_LARGE = dict(use_postln=True, use_conv_embed=True, use_layerscale=True)
arch_settings = {
    'tiny_srf': _variant(96, [2, 2, 6, 2], 2),
    'tiny_lrf': _variant(96, [2, 2, 6, 2], 3),
    'small_srf': _variant(96, [2, 2, 18, 2], 2),
    'small_lrf': _variant(96, [2, 2, 18, 2], 3),
    'base_srf': _variant(128, [2, 2, 18, 2], 2),
    'base_lrf': _variant(128, [2, 2, 18, 2], 3),
    'large_fl3': _variant(192, [2, 2, 18, 2], 3, 5, **_LARGE),
    'large_fl4': _variant(192, [2, 2, 18, 2], 4, **_LARGE),
    'xlarge_fl3': _variant(256, [2, 2, 18, 2], 3, 5, **_LARGE),
    'xlarge_fl4': _variant(256, [2, 2, 18, 2], 4, **_LARGE),
    'huge_fl3': _variant(352, [2, 2, 18, 2], 3, use_postln_in_modulation=True, **_LARGE),
    'huge_fl4': _variant(352, [2, 2, 18, 2], 4, use_postln_in_modulation=True, **_LARGE),
}
ARCH_KEYS = ('embed_dims', 'depths', 'focal_levels', 'focal_windows')
ARCH_FLAGS = ('use_postln', 'use_postln_in_modulation', 'use_conv_embed', 'use_layerscale')


def parse_arch(arch) -> dict:
    """A variant name or dict -> the validated dict (flags default to False)."""
    if isinstance(arch, str):
        check_choice('arch', arch, tuple(arch_settings))
        arch = arch_settings[arch]
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be one of {sorted(arch_settings)} or a dict with keys '
                        f'{list(ARCH_KEYS)} (and optionally {list(ARCH_FLAGS)}), got {arch!r}')
    missing = [k for k in ARCH_KEYS if k not in arch]
    unknown = sorted(set(arch) - set(ARCH_KEYS) - set(ARCH_FLAGS))
    if missing or unknown:
        raise KeyError(f'arch dict: missing keys {missing}, unknown keys {unknown}; it takes '
                       f'{list(ARCH_KEYS)} and optionally {list(ARCH_FLAGS)}')
    out = {k: arch.get(k, False) for k in ARCH_FLAGS}
    for flag in ARCH_FLAGS:
        check_bool(f'arch["{flag}"]', out[flag])
    out['embed_dims'] = check_size_limit('arch["embed_dims"]', arch['embed_dims'], MAX_WIDTH)
    for key in ('depths', 'focal_levels', 'focal_windows'):
        values = arch[key]
        if not isinstance(values, (list, tuple)) or len(values) != len(arch['depths']) or \
                not values:
            raise ValueError(f'arch["{key}"] must be a list with one entry per stage '
                             f'({len(arch["depths"])}), got {values!r}')
        for v in values:
            check_size_limit(f'arch["{key}"] entry', v, MAX_BLOCKS)
        out[key] = list(values)
    return out


class PatchEmbed(nn.Module):
    """Pad right/bottom to a multiple of ``patch_size``, then a conv (``kernel = stride =
    patch_size``, or with ``overlap`` 7x7 stride 4 for the stem / 3x3 stride 2 after a stage)
    and an optional channel norm: ``(N, C, H, W)`` -> ``(N, H', W', out)``."""

    def __init__(self, in_channels: int, out_channels: int, patch_size: int, overlap: bool,
                 is_stem: bool, norm_cfg: Optional[dict]):
        super().__init__()
        self.patch_size = patch_size
        if overlap:
            kernel, stride, padding = (7, 4, 2) if is_stem else (3, 2, 1)
            self.proj = nn.Conv2d(in_channels, out_channels, kernel, stride, padding)
        else:
            self.proj = nn.Conv2d(in_channels, out_channels, patch_size, patch_size)
        self.norm = build_norm(norm_cfg, out_channels)[1] if norm_cfg is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = F.pad(x, (0, (-x.shape[3]) % p, 0, (-x.shape[2]) % p))
        x = self.proj(x).permute(0, 2, 3, 1)
        return x if self.norm is None else self.norm(x)


class FocalModulation(nn.Module):
    """Focal modulation on ``(N, H, W, C)``: query ``q``, context ``ctx`` and ``focal_level + 1``
    gates from one linear ``f``; ``focal_level`` depthwise convs (kernel ``focal_window + 2k``)
    + GELU aggregate the context, a global average adds the last level, ``h`` (1x1 conv)
    modulates ``q``, then ``proj``."""

    def __init__(self, dims: int, focal_level: int, focal_window: int, proj_drop: float,
                 use_postln_in_modulation: bool, normalize_modulator: bool):
        super().__init__()
        self.focal_level = focal_level
        self.normalize_modulator = normalize_modulator
        self.f = nn.Linear(dims, 2 * dims + focal_level + 1)
        self.h = nn.Conv2d(dims, dims, kernel_size=1)
        self.act = nn.GELU()
        self.proj = nn.Linear(dims, dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.focal_layers = nn.ModuleList()
        for k in range(focal_level):
            kernel = 2 * k + focal_window
            self.focal_layers.append(nn.Sequential(
                nn.Conv2d(dims, dims, kernel, groups=dims, padding=kernel // 2, bias=False),
                nn.GELU()))
        self.ln = nn.LayerNorm(dims) if use_postln_in_modulation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        q, ctx, gates = torch.split(self.f(x).permute(0, 3, 1, 2), (c, c, self.focal_level + 1),
                                    1)
        ctx_all = 0
        for level, layer in enumerate(self.focal_layers):
            ctx = layer(ctx)
            ctx_all = ctx_all + ctx * gates[:, level:level + 1]
        ctx_global = self.act(ctx.mean(2, keepdim=True).mean(3, keepdim=True))
        ctx_all = ctx_all + ctx_global * gates[:, self.focal_level:]
        if self.normalize_modulator:
            ctx_all = ctx_all / (self.focal_level + 1)
        x = (q * self.h(ctx_all)).permute(0, 2, 3, 1)
        if self.ln is not None:
            x = self.ln(x)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """``fc1`` -> GELU -> dropout -> ``fc2`` -> dropout (the official names)."""

    def __init__(self, dims: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class FocalModulationBlock(nn.Module):
    """Pre-norm (or, with ``use_postln``, post-norm) modulation and MLP residuals with optional
    layer scale ``gamma_1``/``gamma_2``, on ``(N, H, W, C)``."""

    def __init__(self, dims: int, mlp_ratio: float, drop: float, drop_path: float,
                 norm_cfg: dict, focal_level: int, focal_window: int, use_postln: bool,
                 use_postln_in_modulation: bool, normalize_modulator: bool,
                 use_layerscale: bool, layerscale_value: float, with_cp: bool):
        super().__init__()
        self.use_postln, self.with_cp = use_postln, with_cp
        self.norm1 = build_norm(norm_cfg, dims)[1]
        self.modulation = FocalModulation(dims, focal_level, focal_window, drop,
                                          use_postln_in_modulation, normalize_modulator)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = build_norm(norm_cfg, dims)[1]
        self.mlp = Mlp(dims, int(dims * mlp_ratio), drop)
        if use_layerscale:
            self.gamma_1 = nn.Parameter(torch.full((dims, ), float(layerscale_value)))
            self.gamma_2 = nn.Parameter(torch.full((dims, ), float(layerscale_value)))
        else:
            self.gamma_1 = self.gamma_2 = None

    def _scaled(self, x: torch.Tensor, gamma: Optional[torch.Tensor]) -> torch.Tensor:
        return self.drop_path(x if gamma is None else gamma * x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_postln:
            x = x + self._scaled(self.norm1(self.modulation(x)), self.gamma_1)
            return x + self._scaled(self.norm2(self.mlp(x)), self.gamma_2)
        x = x + self._scaled(self.modulation(self.norm1(x)), self.gamma_1)
        return x + self._scaled(self.mlp(self.norm2(x)), self.gamma_2)

    @torch.jit.unused
    def _checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        # (a training-time memory trade: TorchScript compiles no checkpoint)
        return cp.checkpoint(self._forward, x, use_reentrant=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad and not torch.jit.is_scripting():
            return self._checkpointed(x)
        return self._forward(x)


class BasicLayer(nn.Module):
    """One stage: ``blocks`` then (when built) ``downsample``, the patch embedding feeding the
    next stage."""

    def __init__(self, blocks: List[nn.Module], downsample: Optional[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


@MODELS.register_module()
class FocalNet(BaseBackbone):
    """FocalNet backbone (official parameter names; see the module docstring).

    Args:
        arch (str | dict): a key of ``arch_settings`` or ``dict(embed_dims, depths,
            focal_levels, focal_windows)`` plus optional flags ``use_postln``,
            ``use_postln_in_modulation``, ``use_conv_embed`` (overlapping patch embeddings),
            ``use_layerscale``.
        in_channels (int): input image channels.
        patch_size (int): stem patch size (the input is padded to a multiple of it).
        mlp_ratio (float): MLP hidden width / channels.
        drop_rate (float): dropout after the stem, in the modulation output and the MLP.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
        out_indices (int | Sequence[int]): stages (0-based) to return; only the stages up to the
            last one are built.
        frozen_stages (int): ``-1`` nothing, ``0`` the stem, ``k`` the stem and stages
            ``0..k-1`` (each with the patch embedding after it; output norms stay trainable).
        patch_norm (bool): a norm after every patch embedding.
        normalize_modulator (bool): divide the aggregated context by ``focal_level + 1``.
        layerscale_value (float): initial layer scale (with ``use_layerscale``).
        norm_cfg (dict): the norms (blocks, patch embeddings, outputs); default LayerNorm.
        with_cp (bool): gradient checkpointing of each block.
        init_cfg: mmengine init config.

    Outputs: a tuple of ``(N, embed_dims * 2 ** i, ceil(H / 4 / 2 ** i), ...)`` maps in
    ``out_indices`` order, named ``stage{i + 1}``.
    """

    arch_settings = arch_settings

    def __init__(self, arch: Union[str, dict] = 'tiny_srf', in_channels: int = 3,
                 patch_size: int = 4, mlp_ratio: float = 4., drop_rate: float = 0.,
                 drop_path_rate: float = 0.1, out_indices: Union[int, Sequence[int]] = (3, ),
                 frozen_stages: int = -1, patch_norm: bool = True,
                 normalize_modulator: bool = False, layerscale_value: float = 1e-4,
                 norm_cfg: dict = dict(type='LN'), with_cp: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        settings = self.arch = parse_arch(arch)
        self.num_stages = len(settings['depths'])
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.patch_size = check_positive_int('patch_size', patch_size)
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or \
                mlp_ratio <= 0:
            raise ValueError(f'mlp_ratio must be a positive number, got {mlp_ratio!r}')
        for name, flag in (('patch_norm', patch_norm), ('normalize_modulator',
                                                         normalize_modulator),
                           ('with_cp', with_cp)):
            check_bool(name, flag)
        check_norm_cfg(norm_cfg)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        dims = [settings['embed_dims'] * 2 ** i for i in range(self.num_stages)]
        patch_norm_cfg = norm_cfg if patch_norm else None
        overlap = settings['use_conv_embed']
        self.patch_embed = PatchEmbed(in_channels, dims[0], patch_size, overlap, True,
                                      patch_norm_cfg)
        self.pos_drop = nn.Dropout(check_rate('drop_rate', drop_rate))
        depths = settings['depths']
        dpr = torch.linspace(0, check_rate('drop_path_rate', drop_path_rate), sum(depths),
                             device='cpu').tolist()
        last = max(self.out_indices)
        self.layers = nn.ModuleList()
        for i in range(last + 1):
            start = sum(depths[:i])
            blocks = [FocalModulationBlock(
                dims[i], mlp_ratio, drop_rate, dpr[start + j], norm_cfg,
                settings['focal_levels'][i], settings['focal_windows'][i], settings['use_postln'],
                settings['use_postln_in_modulation'], normalize_modulator,
                settings['use_layerscale'], layerscale_value, with_cp) for j in range(depths[i])]
            down = PatchEmbed(dims[i], dims[i + 1], 2, overlap, False, patch_norm_cfg) \
                if i < last else None
            self.layers.append(BasicLayer(blocks, down))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm(norm_cfg, dims[i])[1])
        stem_stride = 4 if overlap else patch_size
        self._set_outputs([dims[i] for i in self.out_indices],
                          [stem_stride * 2 ** i for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.patch_embed, *self.layers]

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: :class:`ScriptableFocalNet`, this forward over the
        same modules, a list of the same maps."""
        return ScriptableFocalNet(self)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(N, in_channels, H, W)`` -> tuple of ``(N, C_i, H_i, W_i)`` maps."""
        self.check_input(x)
        x = self.pos_drop(self.patch_embed(x))
        outs = [None] * len(self.out_indices)
        for i, layer in enumerate(self.layers):
            for block in layer.blocks:
                x = block(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs[self.out_indices.index(i)] = out.permute(0, 3, 1, 2).contiguous()
            if layer.downsample is not None:
                x = layer.downsample(x.permute(0, 3, 1, 2))
        return tuple(outs)


class _ChannelsFirst(nn.Module):
    """``module(x.permute(0, 3, 1, 2))``: a downsampling patch embedding on channels-last
    tokens."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.permute(0, 3, 1, 2))


class ScriptableFocalNet(nn.Module):
    """:class:`FocalNet`'s forward in TorchScript's subset over the same modules: a list of the
    ``out_indices`` maps."""

    def __init__(self, model: FocalNet):
        super().__init__()
        self.stem = nn.Sequential(model.patch_embed, model.pos_drop)
        self.stages = nn.ModuleList([nn.Sequential(*layer.blocks) for layer in model.layers])
        self.downsamples = nn.ModuleList([
            nn.Identity() if layer.downsample is None else _ChannelsFirst(layer.downsample)
            for layer in model.layers])
        self.norms = nn.ModuleList([
            model._modules[f'norm{i}'] if f'norm{i}' in model._modules else nn.Identity()
            for i in range(len(model.layers))])
        self.out_indices: List[int] = [int(i) for i in model.out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        feats: Dict[int, torch.Tensor] = {}
        for i, (stage, down, norm) in enumerate(zip(self.stages, self.downsamples, self.norms)):
            x = stage(x)
            if i in self.out_indices:
                feats[i] = norm(x).permute(0, 3, 1, 2).contiguous()
            x = down(x)
        return [feats[i] for i in self.out_indices]


__all__ = ['FocalNet', 'arch_settings', 'parse_arch']
