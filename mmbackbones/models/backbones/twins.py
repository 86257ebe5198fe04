"""Twins-PCPVT and Twins-SVT (https://arxiv.org/abs/2104.13840).

Four stages, each a non-overlapping patch embedding (zero-padded at the bottom/right to a
multiple of the stride), then encoder layers with a conditional position encoding (a 3x3
depth-wise conv) after the first one, then optionally a norm. PCPVT's layers all use global
sub-sampled attention (GSA, PVT's spatial reduction); SVT alternates locally-grouped window
attention (LSA, even layers) and GSA (odd layers). Outputs are maps at strides 4, 8, 16, 32.

Signature, defaults, meanings and parameter names are mmpretrain 1.2's ``PCPVT``/``SVT``
(``arch`` names or dicts, ``out_indices=(3,)``, ``norm_after_stage`` a bool or one per
stage). Parameter tree::

    patch_embeds.{i}          projection (Conv2d), norm (LayerNorm)
    stages.{i}.{j}            norm1, attn (GSA: proj, q, kv, sr, norm; LSA: qkv, proj), norm2,
                              ffn.layers.{0.0, 1}
    position_encodings.{i}    proj (3x3 depth-wise conv)
    norm_after_stage{i}       the stage norm (Identity when off)

Our additions: ``frozen_stages``, ``norm_eval``, ``with_cp``, out_indices checks, stages after
the last output not built, the input checks, ``get_layer_depth``, and three arguments through
which mmseg's spelling (``mmbackbones.mmseg.PCPVT``/``SVT``) builds this class:
``patch_norm_cfg`` (mmpretrain: LN; mmseg: its ``norm_cfg``), ``block_norm_cfg`` (None: as
``norm_cfg``; mmseg: LN) and ``gsa_proj_bias`` (mmseg ties it to ``qkv_bias``). mmseg's and
timm's checkpoints (``twins_pcpvt_*``, ``twins_svt_*``) convert on every load route
(:mod:`mmbackbones.checkpoint.converters.mmseg_twins`, ``timm_twins``).
"""
from typing import List, Optional, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_frozen_stages,
                                 check_positive_int, check_rate, check_size_limit,
                                 normalize_out_indices, to_plain)
from ..base import BaseBackbone
from ..host_init import ALL_NORMS, run_host_init, trunc_normal_linear_init
from ..layer_decay import strip_prefix
from ..layers.norm import build_norm
from ..layers.patch_embed import PatchEmbed
from ..layers.spatial_reduction import (check_stage_grids, check_token_norm_cfg,
                                        stage_int_list, tokens_to_map)
from ..layers.twins_blocks import ConditionalPositionEncoding, TwinsEncoderLayer

MAX_KERNEL = 64


def _arch(name: str) -> dict:
    """mmpretrain's rows, written per stage."""
    table = {
        'pcpvt-s': ([64, 128, 320, 512], [3, 4, 6, 3], [1, 2, 5, 8], [8, 8, 4, 4], None),
        'pcpvt-b': ([64, 128, 320, 512], [3, 4, 18, 3], [1, 2, 5, 8], [8, 8, 4, 4], None),
        'pcpvt-l': ([64, 128, 320, 512], [3, 8, 27, 3], [1, 2, 5, 8], [8, 8, 4, 4], None),
        'svt-s': ([64, 128, 256, 512], [2, 2, 10, 4], [2, 4, 8, 16], [4, 4, 4, 4], 7),
        'svt-b': ([96, 192, 384, 768], [2, 2, 18, 2], [3, 6, 12, 24], [4, 4, 4, 4], 7),
        'svt-l': ([128, 256, 512, 1024], [2, 2, 18, 2], [4, 8, 16, 32], [4, 4, 4, 4], 7),
    }
    embed, depths, heads, mlp, window = table[name]
    row = dict(embed_dims=embed, depths=depths, num_heads=heads, patch_sizes=[4, 2, 2, 2],
               strides=[4, 2, 2, 2], mlp_ratios=mlp, sr_ratios=[8, 4, 2, 1])
    if window:
        row['window_sizes'] = [window] * 4
    return row


def _zoo(kind: str) -> dict:
    zoo = {}
    for short, long in (('s', 'small'), ('b', 'base'), ('l', 'large')):
        zoo.update(dict.fromkeys([short, long], _arch(f'{kind}-{short}')))
    return zoo


@MODELS.register_module()
class PCPVT(BaseBackbone):
    """Twins-PCPVT, mmpretrain 1.2's signature and defaults.

    Args:
        arch (str | dict): ``'small'``/``'s'``, ``'base'``/``'b'``, ``'large'``/``'l'``
            (:attr:`arch_zoo`) or a dict with exactly the keys of :attr:`essential_keys`, each
            a list with one entry per stage.
        in_channels (int): input image channels.
        out_indices (int | Sequence[int]): stages to return (negative counts from the end);
            default the last. Stages after the last one asked for are not built.
        qkv_bias (bool): biases of the query/key/value projections.
        drop_rate, attn_drop_rate (float): dropout (after the patch embedding, attention and
            FFN), on attention weights.
        drop_path_rate (float): stochastic depth, linearly increasing over all layers.
        norm_cfg (dict): the norms of the layers and after the stages (LayerNorm-like).
        norm_after_stage (bool | list[bool]): a norm after every stage / after each stage.
        init_cfg: mmengine init config; ``None``: mmpretrain's init (trunc-normal Linears,
            unit norms, fan-out normal convs).
        frozen_stages (int): ours. -1 nothing, 0 the first patch embedding, ``k`` stages
            ``1..k`` whole (patch embedding, layers, position encoding, norm).
        norm_eval (bool): ours, the contract's flag; Twins has no BatchNorm.
        with_cp (bool): ours. Gradient checkpointing of every layer.
        patch_norm_cfg, block_norm_cfg, gsa_proj_bias: ours, for mmseg's spelling (module
            docstring).

    Input ``(N, in_channels, H, W)``, any size; output ``i`` is ``(N, embed_dims[i],
    ceil(H / s_i), ceil(W / s_i))``, ``s_i = prod(strides[:i + 1])``, named ``stage{i+1}``.
    """

    arch_zoo = _zoo('pcpvt')
    essential_keys = {'embed_dims', 'depths', 'num_heads', 'patch_sizes', 'strides',
                      'mlp_ratios', 'sr_ratios'}

    def __init__(self, arch, in_channels=3, out_indices=(3, ), qkv_bias=False, drop_rate=0.,
                 attn_drop_rate=0., drop_path_rate=0., norm_cfg=dict(type='LN'),
                 norm_after_stage=False, init_cfg=None, frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False,
                 patch_norm_cfg: dict = dict(type='LN'), block_norm_cfg: Optional[dict] = None,
                 gsa_proj_bias: bool = True):
        super().__init__(init_cfg=init_cfg)
        settings = self._arch_settings(arch)
        self.arch_settings = settings
        n = self.num_stages = self.num_stage = len(settings['depths'])
        self.depths = stage_int_list('depths', settings['depths'], n, MAX_BLOCKS)
        self.embed_dims = stage_int_list('embed_dims', settings['embed_dims'], n, MAX_WIDTH)
        self.num_heads = stage_int_list('num_heads', settings['num_heads'], n, MAX_WIDTH)
        self.patch_sizes = stage_int_list('patch_sizes', settings['patch_sizes'], n, MAX_KERNEL)
        self.strides = stage_int_list('strides', settings['strides'], n, MAX_KERNEL)
        self.mlp_ratios = stage_int_list('mlp_ratios', settings['mlp_ratios'], n, 64)
        self.sr_ratios = stage_int_list('sr_ratios', settings['sr_ratios'], n, MAX_KERNEL)
        self.window_sizes = (stage_int_list('window_sizes', settings['window_sizes'], n,
                                            MAX_KERNEL) if 'window_sizes' in settings else None)
        for i, (dims, heads) in enumerate(zip(self.embed_dims, self.num_heads)):
            if dims % heads:
                raise ValueError(f'arch: embed_dims[{i}]={dims} must be divisible by '
                                 f'num_heads[{i}]={heads}')
            check_size_limit(f'mlp_ratios[{i}] * embed_dims[{i}]', self.mlp_ratios[i] * dims,
                             MAX_WIDTH, 'the FFN width')
        self.in_channels = check_positive_int('in_channels', in_channels)
        for name, value in (('qkv_bias', qkv_bias), ('with_cp', with_cp),
                            ('norm_eval', norm_eval), ('gsa_proj_bias', gsa_proj_bias)):
            check_bool(name, value)
        self.drop_rate = check_rate('drop_rate', drop_rate)
        self.attn_drop_rate = check_rate('attn_drop_rate', attn_drop_rate)
        self.drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        self.norm_cfg = check_token_norm_cfg(norm_cfg, 'Twins')
        self.patch_norm_cfg = check_token_norm_cfg(patch_norm_cfg, 'Twins', 'patch_norm_cfg')
        self.block_norm_cfg = self.norm_cfg if block_norm_cfg is None else \
            check_token_norm_cfg(block_norm_cfg, 'Twins', 'block_norm_cfg')
        norm_after_stage = to_plain(norm_after_stage)
        if isinstance(norm_after_stage, bool):
            norm_after_stage = [norm_after_stage] * n
        if not isinstance(norm_after_stage, (list, tuple)) or len(norm_after_stage) != n or \
                not all(isinstance(v, bool) for v in norm_after_stage):
            raise TypeError(f'norm_after_stage must be a bool or a list of {n} bools (one per '
                            f'stage), got {norm_after_stage!r}')
        self.norm_after_stage = list(norm_after_stage)
        self.out_indices = normalize_out_indices(out_indices, n)
        self.frozen_stages = check_frozen_stages(frozen_stages, n)
        self.qkv_bias, self.with_cp, self.norm_eval = qkv_bias, with_cp, norm_eval
        self.gsa_proj_bias = gsa_proj_bias

        self.num_built = built = max(self.out_indices) + 1
        self.patch_embeds = nn.ModuleList(
            PatchEmbed(self.in_channels if i == 0 else self.embed_dims[i - 1],
                       self.embed_dims[i], self.patch_sizes[i], self.strides[i], 'corner',
                       norm_cfg=self.patch_norm_cfg) for i in range(built))
        self.position_encoding_drops = nn.ModuleList(
            nn.Dropout(self.drop_rate) if self.drop_rate > 0 else nn.Identity()
            for _ in range(built))
        dpr = torch.linspace(0, self.drop_path_rate, sum(self.depths), device='cpu').tolist()
        self.stages = nn.ModuleList(
            nn.ModuleList(self._layer(k, i, dpr[sum(self.depths[:k]) + i])
                          for i in range(self.depths[k])) for k in range(built))
        self.position_encodings = nn.ModuleList(
            ConditionalPositionEncoding(d, d) for d in self.embed_dims[:built])
        for i in range(built):
            self.add_module(f'norm_after_stage{i}',
                            build_norm(self.norm_cfg, self.embed_dims[i])[1]
                            if self.norm_after_stage[i] else nn.Identity())
        strides = [1] * n
        for i in range(n):
            strides[i] = (strides[i - 1] if i else 1) * self.strides[i]
        self._set_outputs([self.embed_dims[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def _arch_settings(self, arch) -> dict:
        arch = to_plain(arch)
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise ValueError(f'arch {arch!r} is not one of {sorted(self.arch_zoo)} (or a '
                                 f'dict with the keys {sorted(self.essential_keys)})')
            return {k: list(v) for k, v in self.arch_zoo[arch.lower()].items()}
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a name ({sorted(self.arch_zoo)}) or a dict, got '
                            f'{arch!r}')
        if set(arch) != self.essential_keys:
            raise KeyError(f'arch dict must have exactly the keys {sorted(self.essential_keys)}, '
                           f'got {sorted(arch)}')
        lengths = {k: len(v) if isinstance(v, (list, tuple)) else None for k, v in arch.items()}
        if None in lengths.values() or len(set(lengths.values())) != 1:
            raise ValueError(f'arch: every entry must be a list with one value per stage, all '
                             f'of the same length; got lengths {lengths}')
        return {k: list(v) for k, v in arch.items()}

    def _layer(self, k: int, i: int, drop_path: float) -> nn.Module:
        """Layer ``i`` of stage ``k``: GSA (PCPVT; SVT's odd layers) or LSA (SVT's even)."""
        window = self.window_sizes[k] if self.window_sizes is not None and i % 2 == 0 else None
        return TwinsEncoderLayer(
            self.embed_dims[k], self.num_heads[k], self.mlp_ratios[k] * self.embed_dims[k],
            self.drop_rate, self.attn_drop_rate, drop_path, self.qkv_bias, dict(type='GELU'),
            self.block_norm_cfg, self.sr_ratios[k], window, self.gsa_proj_bias, self.with_cp)

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        groups: List[Optional[nn.Module]] = [self.patch_embeds[0]]
        for i in range(self.num_stages):
            if i >= self.num_built:
                groups.append(None)
                continue
            parts = [self.stages[i], self.position_encodings[i],
                     getattr(self, f'norm_after_stage{i}')]
            groups.append(nn.ModuleList(parts if i == 0 else [self.patch_embeds[i]] + parts))
        return groups

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, sum(depths) + 2)`` for layer-wise lr decay: 0 the first patch embedding,
        one depth per layer (a stage's patch embedding and position encoding with its first
        layer, a stage norm with its last), the last depth anything else (a head)."""
        num_depths = sum(self.depths) + 2
        name = strip_prefix(param_name, prefix)
        parts = name.split('.') if name is not None else []
        if len(parts) >= 2 and parts[0].startswith('norm_after_stage'):
            stage = int(parts[0][len('norm_after_stage'):])
            return sum(self.depths[:stage + 1]), num_depths
        if len(parts) < 3 or parts[0] not in ('patch_embeds', 'stages', 'position_encodings'):
            return num_depths - 1, num_depths
        stage = int(parts[1])
        before = sum(self.depths[:stage])
        if parts[0] == 'stages':
            return before + int(parts[2]) + 1, num_depths
        if parts[0] == 'patch_embeds' and stage == 0:
            return 0, num_depths
        return before + 1, num_depths

    def init_weights(self):
        """``init_cfg`` as mmengine applies it; without one, mmpretrain's init."""
        if self.init_cfg is not None or self._is_init:
            return super().init_weights()
        run_host_init(self, lambda: trunc_normal_linear_init(self, ALL_NORMS),
                      "mmpretrain's Twins init (trunc-normal Linear, unit norms, fan-out "
                      "normal Conv2d)")
        return None

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: ``layers.twins_blocks.ScriptableTwins``, this
        forward over the same modules without the input-size checks, a list of the same maps."""
        from ..layers.twins_blocks import ScriptableTwins
        return ScriptableTwins(self)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        check_stage_grids(type(self).__name__, x.shape[2:], [
            (self.patch_sizes[i], self.strides[i], None,
             self.sr_ratios[i] if i < self.num_built else 1) for i in range(self.num_built)])
        outs = {}
        for i in range(self.num_built):
            x, hw = self.patch_embeds[i](x)
            x = self.position_encoding_drops[i](x)
            for j, layer in enumerate(self.stages[i]):
                x = layer(x, hw)
                if j == 0:
                    x = self.position_encodings[i](x, hw)
            x = tokens_to_map(getattr(self, f'norm_after_stage{i}')(x), hw).contiguous()
            if i in self.out_indices:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)


@MODELS.register_module()
class SVT(PCPVT):
    """Twins-SVT, mmpretrain 1.2's signature and defaults: PCPVT whose even layers (0, 2, ...)
    of each stage use locally-grouped attention in ``window_sizes[stage]`` windows. ``arch``
    dicts also carry ``window_sizes``."""

    arch_zoo = _zoo('svt')
    essential_keys = PCPVT.essential_keys | {'window_sizes'}


__all__ = ['PCPVT', 'SVT']
