"""Pyramid Vision Transformer v1 (https://arxiv.org/abs/2102.12122) and v2
(https://arxiv.org/abs/2106.13797).

Four stages, each a conv patch embedding (v1: ``patch_size``-strided, no padding; v2: 7/3-sized
overlapping with ``kernel // 2`` padding), ``num_layers[i]`` blocks of spatial-reduction
attention (keys and values from a ``sr_ratio``-strided conv of the tokens) and an FFN on the token
map (v2 with a 3x3 depth-wise conv), then (v2) a norm. v1 adds a learned absolute position
embedding per stage, resized bilinearly to the token grid. Outputs are maps at strides
4, 8, 16, 32.

Signature, defaults, meanings and parameter names are mmdet 3.3's ``PyramidVisionTransformer``
and ``PyramidVisionTransformerV2`` (mmpretrain has no PVT; mmdet is the only OpenMMLab host, so
the core is its spelling). Parameter tree (the MiT tree of mmseg, shared blocks in
``models/layers/spatial_reduction.py``)::

    layers.{i}.0   patch embedding: projection (Conv2d), norm
    layers.{i}.1.0 v1 only: the position embedding (``pos_embed``, ``(1, h * w, C)``)
    layers.{i}.1.{j}  block: norm1, attn (attn.{in_proj_*, out_proj}, sr, norm), norm2,
                      ffn.layers.{0: 1x1 conv, [1: 3x3 depth-wise conv (v2)], 3|4: 1x1 conv}
    layers.{i}.2   stage norm (v2; v1 ``norm_after_stage=False``: Identity)

Our additions: ``frozen_stages``, ``norm_eval``, ``with_cp``, ``arch`` (mmdet's configs: v1
``'t'``, ``'s'``, ``'m'``, ``'l'``; v2 ``'b0'`` to ``'b5'``), out_indices checks, stages after the
last output not built, the input checks, ``get_layer_depth``. The official releases
(``whai362/PVT``, what mmdet's ``convert_weights=True`` converts with ``pvt_convert``) and timm's
``pvt_v2_b*`` convert through :mod:`mmbackbones.checkpoint.converters.official_pvt` and
:mod:`~mmbackbones.checkpoint.converters.timm_pvt_v2`, on every load route.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_IMAGE_SIDE, MAX_WIDTH, check_bool,
                                 check_choice, check_frozen_stages, check_positive_int,
                                 check_rate, check_size_limit, normalize_out_indices, to_plain)
from ..base import BaseBackbone
from ..host_init import run_host_init, trunc_normal_linear_init
from ..layer_decay import patch_stage_layer_depth
from ..layers.norm import build_norm
from ..layers.spatial_reduction import (OverlapPatchEmbed, SRBlock, check_act_cfg,
                                        check_stage_grids, check_token_norm_cfg,
                                        patch_stage_groups, stage_int_list, tokens_to_map)

MAX_KERNEL = 64
# arch -> (embed_dims, num_layers, mlp_ratios), as mmdet 3.3's retinanet_pvt*/pvtv2* configs set
# them (num_heads [1, 2, 5, 8] and sr_ratios [8, 4, 2, 1] in all)
PVT_ARCHS = {
    't': (64, (2, 2, 2, 2), (8, 8, 4, 4)),
    's': (64, (3, 4, 6, 3), (8, 8, 4, 4)),
    'm': (64, (3, 4, 18, 3), (8, 8, 4, 4)),
    'l': (64, (3, 8, 27, 3), (8, 8, 4, 4)),
}
PVTV2_ARCHS = {
    'b0': (32, (2, 2, 2, 2), (8, 8, 4, 4)),
    'b1': (64, (2, 2, 2, 2), (8, 8, 4, 4)),
    'b2': (64, (3, 4, 6, 3), (8, 8, 4, 4)),
    'b3': (64, (3, 4, 18, 3), (8, 8, 4, 4)),
    'b4': (64, (3, 8, 27, 3), (8, 8, 4, 4)),
    'b5': (64, (3, 6, 40, 3), (4, 4, 4, 4)),
}
_ARCH_KEYS = ('embed_dims', 'num_layers', 'mlp_ratios')
_DEFAULTS = dict(embed_dims=64, num_layers=(3, 4, 6, 3), mlp_ratios=(8, 8, 4, 4))
# mmdet 3.3's PyramidVisionTransformer(...) signature, in its order (the host twins' table)
MMDET_PVT_PARAMS = dict(
    pretrain_img_size=224, in_channels=3, embed_dims=64, num_stages=4,
    num_layers=[3, 4, 6, 3], num_heads=[1, 2, 5, 8], patch_sizes=[4, 2, 2, 2],
    strides=[4, 2, 2, 2], paddings=[0, 0, 0, 0], sr_ratios=[8, 4, 2, 1],
    out_indices=(0, 1, 2, 3), mlp_ratios=[8, 8, 4, 4], qkv_bias=True, drop_rate=0.,
    attn_drop_rate=0., drop_path_rate=0.1, use_abs_pos_embed=True, norm_after_stage=False,
    use_conv_ffn=False, act_cfg=dict(type='GELU'), norm_cfg=dict(type='LN', eps=1e-6),
    pretrained=None, convert_weights=True, init_cfg=None)
# what PyramidVisionTransformerV2 fixes (mmdet passes these itself: giving them is refused)
V2_FIXED = dict(patch_sizes=[7, 3, 3, 3], paddings=[3, 1, 1, 1], use_abs_pos_embed=False,
                norm_after_stage=True, use_conv_ffn=True)


def _pair_size(name: str, value) -> Tuple[int, int]:
    value = to_plain(value)
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise TypeError(f'{name} must be an int or a pair of ints, got {value!r}')
    return tuple(check_size_limit(name, v, MAX_IMAGE_SIDE) for v in value)


def host_init_cfg(init_cfg):
    """mmdet's PVT reads any ``init_cfg`` holding a ``checkpoint`` as a Pretrained one (its
    shipped configs write ``init_cfg=dict(checkpoint=...)`` without a type)."""
    if isinstance(init_cfg, dict) and 'type' not in init_cfg and 'checkpoint' in init_cfg:
        return dict(init_cfg, type='Pretrained')
    return init_cfg


class AbsolutePositionEmbedding(nn.Module):
    """PVT v1's learned position embedding ``pos_embed`` ``(1, h * w, C)`` of the pretraining
    grid, resized bilinearly (``align_corners=False``) to the tokens' grid and added, then
    dropout. ``forward(x, hw)`` -> ``(N, L, C)``."""

    def __init__(self, pos_shape: Tuple[int, int], pos_dim: int, drop_rate: float = 0.):
        super().__init__()
        self.pos_shape, self.pos_dim = tuple(pos_shape), pos_dim
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_shape[0] * pos_shape[1], pos_dim))
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def resized(self, hw: Tuple[int, int]) -> torch.Tensor:
        h, w = self.pos_shape
        grid = self.pos_embed[:, -h * w:].reshape(1, h, w, self.pos_dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=tuple(hw), mode='bilinear')
        return grid.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        return self.drop(x + self.resized(hw))

    def extra_repr(self) -> str:
        return f'pos_shape={self.pos_shape}, pos_dim={self.pos_dim}'


@MODELS.register_module()
class PyramidVisionTransformer(BaseBackbone):
    """PVT v1 (and, with v2's flags, v2), mmdet 3.3's signature and defaults (PVT-Small's
    depths).

    Args:
        pretrain_img_size (int | tuple): the image size the position embeddings were learned
            at (their grid is ``size // prod(patch_sizes[:i + 1])``).
        in_channels (int): input image channels.
        embed_dims (int): channels of stage 1's heads; stage ``i`` has
            ``embed_dims * num_heads[i]`` channels.
        num_stages (int): number of stages (entries of every per-stage list).
        num_layers, num_heads, patch_sizes, strides, paddings, sr_ratios, mlp_ratios
            (Sequence[int]): per stage: blocks, heads, patch-embedding kernel, stride and
            padding, key/value reduction, FFN width / stage width.
        out_indices (int | Sequence[int]): stages to return (negative counts from the end).
            Stages after the last one asked for are not built.
        qkv_bias (bool): biases of the attention projections.
        drop_rate, attn_drop_rate (float): dropout (after the position embedding, attention
            and FFN), on attention weights.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
        use_abs_pos_embed (bool): v1's absolute position embeddings.
        norm_after_stage (bool): a norm after each stage (v2).
        use_conv_ffn (bool): the 3x3 depth-wise conv inside the FFN (v2).
        act_cfg, norm_cfg (dict): FFN activation, norms (LayerNorm-like).
        pretrained (str, optional): mmdet's deprecated spelling of a Pretrained ``init_cfg``.
        convert_weights (bool): mmdet's flag for the official files. Here every load route
            detects and converts the official layout itself, so it changes nothing (accepted
            for mmdet's configs).
        init_cfg: mmengine init config (a dict with a ``checkpoint`` and no type means
            Pretrained, as in mmdet); ``None``: mmdet's init (trunc-normal Linears, unit
            LayerNorms, fan-out normal convs, trunc-normal position embeddings).
        frozen_stages (int): ours. -1 nothing, 0 the first patch embedding, ``k`` stages
            ``1..k`` whole (patch embedding, position embedding, blocks, norm).
        norm_eval (bool): ours, the contract's flag; PVT has no BatchNorm, so it changes
            nothing here.
        with_cp (bool): ours. Gradient checkpointing of every block.
        arch (str, optional): ours, one of :attr:`arch_settings` (``embed_dims``,
            ``num_layers``, ``mlp_ratios`` of mmdet's configs; those arguments must then be left
            at their defaults or equal the arch's).

    Input ``(N, in_channels, H, W)``, any size; output ``i`` is ``(N, embed_dims *
    num_heads[i], ~H / s_i, ~W / s_i)`` with ``s_i = prod(strides[:i + 1])``, named
    ``stage{i+1}``.
    """

    arch_settings = PVT_ARCHS

    def __init__(self, pretrain_img_size=224, in_channels=3, embed_dims=64, num_stages=4,
                 num_layers=[3, 4, 6, 3], num_heads=[1, 2, 5, 8], patch_sizes=[4, 2, 2, 2],
                 strides=[4, 2, 2, 2], paddings=[0, 0, 0, 0], sr_ratios=[8, 4, 2, 1],
                 out_indices=(0, 1, 2, 3), mlp_ratios=[8, 8, 4, 4], qkv_bias=True,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0.1, use_abs_pos_embed=True,
                 norm_after_stage=False, use_conv_ffn=False, act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='LN', eps=1e-6), pretrained=None, convert_weights=True,
                 init_cfg=None, frozen_stages: int = -1, norm_eval: bool = False,
                 with_cp: bool = False, arch: Optional[str] = None):
        super().__init__(init_cfg=self._pretrained_to_init_cfg(pretrained,
                                                               host_init_cfg(init_cfg)))
        if arch is not None:
            check_choice('arch', arch, self.arch_settings)
            given = dict(embed_dims=embed_dims, num_layers=num_layers, mlp_ratios=mlp_ratios)
            for key, wanted in zip(_ARCH_KEYS, self.arch_settings[arch]):
                value = to_plain(given[key])
                plain = tuple(value) if isinstance(value, list) else value
                if plain not in (_DEFAULTS[key], wanted):
                    raise ValueError(f'{key}={value!r} contradicts arch={arch!r} ({key}='
                                     f'{wanted!r}); give one or the other')
            embed_dims, num_layers, mlp_ratios = self.arch_settings[arch]
        self.arch = arch
        self.pretrain_img_size = _pair_size('pretrain_img_size', pretrain_img_size)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.embed_dims = check_size_limit('embed_dims', embed_dims, MAX_WIDTH)
        self.num_stages = n = check_size_limit('num_stages', num_stages, 16)
        self.num_layers = stage_int_list('num_layers', num_layers, n, MAX_BLOCKS)
        self.num_heads = stage_int_list('num_heads', num_heads, n, MAX_WIDTH)
        self.patch_sizes = stage_int_list('patch_sizes', patch_sizes, n, MAX_KERNEL)
        self.strides = stage_int_list('strides', strides, n, MAX_KERNEL)
        paddings = to_plain(paddings)
        if not isinstance(paddings, (list, tuple)) or len(paddings) != n or not all(
                isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= MAX_KERNEL
                for p in paddings):
            raise ValueError(f'paddings must be a list of {n} ints in [0, {MAX_KERNEL}] (one '
                             f'per stage), got {paddings!r}')
        self.paddings = tuple(paddings)
        self.sr_ratios = stage_int_list('sr_ratios', sr_ratios, n, MAX_KERNEL)
        self.mlp_ratios = stage_int_list('mlp_ratios', mlp_ratios, n, 64)
        for name, value in (('qkv_bias', qkv_bias), ('use_abs_pos_embed', use_abs_pos_embed),
                            ('norm_after_stage', norm_after_stage),
                            ('use_conv_ffn', use_conv_ffn), ('convert_weights', convert_weights),
                            ('with_cp', with_cp), ('norm_eval', norm_eval)):
            check_bool(name, value)
        self.drop_rate = check_rate('drop_rate', drop_rate)
        self.attn_drop_rate = check_rate('attn_drop_rate', attn_drop_rate)
        self.drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        self.act_cfg = check_act_cfg(act_cfg)
        self.norm_cfg = check_token_norm_cfg(norm_cfg, 'PVT')
        self.out_indices = normalize_out_indices(out_indices, n)
        self.frozen_stages = check_frozen_stages(frozen_stages, n)
        self.qkv_bias, self.with_cp, self.norm_eval = qkv_bias, with_cp, norm_eval
        self.use_abs_pos_embed, self.norm_after_stage = use_abs_pos_embed, norm_after_stage
        self.use_conv_ffn, self.convert_weights = use_conv_ffn, convert_weights
        widths = [self.embed_dims * h for h in self.num_heads]
        for i, width in enumerate(widths):
            check_size_limit(f'embed_dims * num_heads[{i}]', width, MAX_WIDTH)
        for i, width in enumerate(widths):
            check_size_limit(f'mlp_ratios[{i}] * embed_dims * num_heads[{i}]',
                             self.mlp_ratios[i] * width, MAX_WIDTH, 'the FFN width')

        dpr = torch.linspace(0, self.drop_path_rate, sum(self.num_layers),
                             device='cpu').tolist()  # mmdet's rule, over the unbuilt ones too
        self.num_built = max(self.out_indices) + 1
        self.layers = nn.ModuleList()
        channels, first = self.in_channels, 0
        for i in range(self.num_built):
            width = widths[i]
            patch_embed = OverlapPatchEmbed(channels, width, self.patch_sizes[i],
                                            self.strides[i], self.norm_cfg, self.paddings[i])
            blocks = nn.ModuleList()
            if use_abs_pos_embed:
                cell = math.prod(self.patch_sizes[:i + 1])
                blocks.append(AbsolutePositionEmbedding(
                    (self.pretrain_img_size[0] // cell, self.pretrain_img_size[1] // cell),
                    width, self.drop_rate))
            blocks.extend(
                SRBlock(width, self.num_heads[i], self.mlp_ratios[i] * width, self.drop_rate,
                        self.attn_drop_rate, dpr[first + j], qkv_bias, self.act_cfg,
                        self.norm_cfg, self.sr_ratios[i], with_cp, use_conv_ffn)
                for j in range(self.num_layers[i]))
            norm = build_norm(self.norm_cfg, width)[1] if norm_after_stage else nn.Identity()
            self.layers.append(nn.ModuleList([patch_embed, blocks, norm]))
            channels, first = width, first + self.num_layers[i]
        strides = [math.prod(self.strides[:i + 1]) for i in range(n)]
        self._set_outputs([widths[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return patch_stage_groups(self.layers, self.num_stages, self.num_built)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, sum(num_layers) + 2)`` for layer-wise lr decay: 0 the first patch
        embedding, one depth per block (a stage's patch and position embeddings with its first
        block, a stage norm with its last), the last depth anything else (a head)."""
        return patch_stage_layer_depth(param_name, prefix, self.num_layers,
                                       leading=int(self.use_abs_pos_embed))

    def init_weights(self):
        """``init_cfg`` (a Pretrained checkpoint, ...) as mmengine applies it; without one,
        mmdet's init (reported in the one-line init summary like an ``init_cfg`` would be)."""
        if self.init_cfg is not None or self._is_init:
            return super().init_weights()

        def init():
            trunc_normal_linear_init(self)
            for m in self.modules():
                if isinstance(m, AbsolutePositionEmbedding):
                    trunc_normal_(m.pos_embed, std=.02)
        run_host_init(self, init, "mmdet's PVT init (trunc-normal Linear and position "
                                  "embeddings, unit LayerNorm, fan-out normal Conv2d)")
        return None

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: ``layers.spatial_reduction.ScriptableTokenStages``,
        this forward over the same modules without the input-size checks, a list of the same
        maps."""
        from ..layers.spatial_reduction import ScriptableTokenStages
        return ScriptableTokenStages(self.layers, self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        check_stage_grids(type(self).__name__, x.shape[2:], [
            (self.patch_sizes[i], self.strides[i], self.paddings[i], self.sr_ratios[i])
            for i in range(self.num_built)])
        outs = {}
        for i, (patch_embed, blocks, norm) in enumerate(self.layers):
            x, hw = patch_embed(x)
            for block in blocks:
                x = block(x, hw)
            x = tokens_to_map(norm(x), hw)
            if i in self.out_indices:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)


@MODELS.register_module()
class PyramidVisionTransformerV2(PyramidVisionTransformer):
    """PVT v2: mmdet 3.3's ``PyramidVisionTransformerV2(**kwargs)``, i.e. the v1 class with
    ``patch_sizes=[7, 3, 3, 3]``, ``paddings=[3, 1, 1, 1]``, no position embeddings, a norm
    after each stage and the depth-wise conv FFN (those five may not be given, as in mmdet).
    Default depths: PVTv2-B2's. ``arch``: ``'b0'`` to ``'b5'``."""

    arch_settings = PVTV2_ARCHS

    def __init__(self, **kwargs):
        given = sorted(set(kwargs) & set(V2_FIXED))
        if given:
            raise TypeError(f'PyramidVisionTransformerV2 fixes {", ".join(given)} (v2 is '
                            f'defined by them: {V2_FIXED}); build PyramidVisionTransformer to '
                            f'choose them')
        super().__init__(**V2_FIXED, **kwargs)


__all__ = ['PyramidVisionTransformer', 'PyramidVisionTransformerV2',
           'AbsolutePositionEmbedding', 'PVT_ARCHS', 'PVTV2_ARCHS']
