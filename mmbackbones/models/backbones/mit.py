"""Mix Transformer (MiT), the SegFormer encoder (https://arxiv.org/abs/2105.15203).

Four stages, each an overlapping patch embedding (a strided convolution with ``kernel // 2``
padding, then a norm), ``num_layers[i]`` blocks of *efficient* self-attention (keys and values
from a ``sr_ratio``-times strided convolution of the tokens) and a Mix-FFN (1x1 conv, 3x3
depth-wise conv, activation, 1x1 conv), then a norm. Outputs are maps at strides 4, 8, 16, 32.

Signature, defaults, meanings and parameter names are mmseg 1.2.2's ``MixVisionTransformer``
(mmseg is the only OpenMMLab host of this family; the core is its spelling, no host twin
needed). The attention keeps mmseg's ``nn.MultiheadAttention`` names
(``layers.{i}.1.{j}.attn.attn.in_proj_weight|in_proj_bias|out_proj.*``) and runs through
``scaled_dot_product_attention``: the query rows of ``in_proj`` apply to the tokens, the key/value
rows to the reduced tokens. Parameter tree::

    layers.{i}.0   patch embedding: projection (Conv2d), norm
    layers.{i}.1.{j}  block: norm1, attn (attn.{in_proj_*, out_proj}, sr, norm), norm2,
                      ffn.layers.{0: 1x1 conv, 1: 3x3 depth-wise conv, 4: 1x1 conv}
    layers.{i}.2   stage norm

Our additions: ``arch`` (``'b0'``..``'b5'``, the embed_dims/num_layers/num_heads of mmseg's
SegFormer configs), ``frozen_stages``, ``norm_eval``, out_indices checks, stages after the last
output not built, the input checks, ``get_layer_depth``. NVlabs' official ``mit_b*.pth`` files
(timm-style ``patch_embed1``/``block1``/``norm1`` names) convert through
:mod:`mmbackbones.checkpoint.converters.segformer_mit`.
"""
import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, check_bool, check_choice,
                                 check_frozen_stages, check_positive_int, check_rate,
                                 check_size_limit, normalize_out_indices, to_plain)
from ..base import BaseBackbone
from ..host_init import run_host_init, trunc_normal_linear_init
from ..layer_decay import patch_stage_layer_depth
from ..layers.norm import build_norm
from ..layers.spatial_reduction import (EfficientSelfAttention, MixFFN,  # noqa: F401
                                        OverlapPatchEmbed, SRBlock, check_act_cfg,
                                        check_token_norm_cfg, patch_stage_groups,
                                        stage_int_list, tokens_to_map)

MiTBlock = SRBlock  # the MiT name of the shared block
_int_list = stage_int_list

# arch -> (embed_dims, num_layers, num_heads), as mmseg's segformer_mit-b* configs set them
ARCH_SETTINGS = {
    'b0': (32, (2, 2, 2, 2), (1, 2, 5, 8)),
    'b1': (64, (2, 2, 2, 2), (1, 2, 5, 8)),
    'b2': (64, (3, 4, 6, 3), (1, 2, 5, 8)),
    'b3': (64, (3, 4, 18, 3), (1, 2, 5, 8)),
    'b4': (64, (3, 8, 27, 3), (1, 2, 5, 8)),
    'b5': (64, (3, 6, 40, 3), (1, 2, 5, 8)),
}
MAX_KERNEL = 64
_DEFAULTS = dict(embed_dims=64, num_layers=(3, 4, 6, 3), num_heads=(1, 2, 4, 8))


@MODELS.register_module()
class MixVisionTransformer(BaseBackbone):
    """SegFormer's MiT encoder, mmseg 1.2.2's signature and defaults (which build MiT-B2's
    depths with heads ``[1, 2, 4, 8]``; mmseg's configs use ``[1, 2, 5, 8]``).

    Args:
        in_channels (int): input image channels.
        embed_dims (int): channels of stage 1; stage ``i`` has ``embed_dims * num_heads[i]``.
        num_stages (int): number of stages (entries of every per-stage list).
        num_layers, num_heads, patch_sizes, strides, sr_ratios (Sequence[int]): per stage: blocks,
            attention heads, patch-embedding kernel and stride, key/value reduction.
        out_indices (int | Sequence[int]): stages to return (negative counts from the end).
            Stages after the last one asked for are not built.
        mlp_ratio (int): Mix-FFN hidden width / stage width.
        qkv_bias (bool): biases of the attention projections (input and output).
        drop_rate, attn_drop_rate (float): dropout after attention/FFN, on attention weights.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
        act_cfg, norm_cfg (dict): FFN activation, norms (default ``LN`` with ``eps=1e-6``).
        pretrained (str, optional): mmseg's deprecated spelling of a Pretrained ``init_cfg``.
        init_cfg: mmengine init config; ``None``: mmseg's init (trunc-normal Linears, unit
            LayerNorms, fan-out normal convs).
        with_cp (bool): gradient checkpointing of every block (when its input needs grad).
        frozen_stages (int): ours. -1 nothing, 0 the first patch embedding, ``k`` stages ``1..k``
            whole (patch embedding, blocks, norm).
        norm_eval (bool): ours, the contract's flag (BatchNorms in eval mode during training).
            MiT has no BatchNorm (its norms act on tokens and must be LayerNorm-like), so it
            changes nothing here; accepted so that generic configs build.
        arch (str, optional): ours. ``'b0'``..``'b5'``: ``embed_dims``, ``num_layers`` and
            ``num_heads`` of MiT-B0..B5 (those arguments must then be left at mmseg's defaults
            or equal the arch's).

    Input ``(N, in_channels, H, W)``; output ``i`` is ``(N, embed_dims * num_heads[i],
    ~H / s_i, ~W / s_i)`` with ``s_i`` the product of ``strides[:i + 1]`` (4, 8, 16, 32), named
    ``stage{i+1}``. Any input size (each patch embedding pads ``kernel // 2`` and floors).
    """

    arch_settings = ARCH_SETTINGS

    def __init__(self, in_channels=3, embed_dims=64, num_stages=4, num_layers=[3, 4, 6, 3],
                 num_heads=[1, 2, 4, 8], patch_sizes=[7, 3, 3, 3], strides=[4, 2, 2, 2],
                 sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0., act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='LN', eps=1e-6), pretrained=None, init_cfg=None,
                 with_cp=False, frozen_stages: int = -1, norm_eval: bool = False,
                 arch: Optional[str] = None):
        super().__init__(init_cfg=self._pretrained_to_init_cfg(pretrained, init_cfg))
        if arch is not None:
            check_choice('arch', arch, ARCH_SETTINGS)
            given = dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads)
            for (key, value), wanted in zip(given.items(), ARCH_SETTINGS[arch]):
                value = to_plain(value)
                plain = tuple(value) if isinstance(value, list) else value
                if plain not in (_DEFAULTS[key], wanted):
                    raise ValueError(f'{key}={value!r} contradicts arch={arch!r} ({key}='
                                     f'{wanted!r}); give one or the other')
            embed_dims, num_layers, num_heads = ARCH_SETTINGS[arch]
        self.arch = arch
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.embed_dims = check_size_limit('embed_dims', embed_dims, MAX_WIDTH)
        self.num_stages = check_size_limit('num_stages', num_stages, 16)
        self.num_layers = _int_list('num_layers', num_layers, num_stages, MAX_BLOCKS)
        self.num_heads = _int_list('num_heads', num_heads, num_stages, MAX_WIDTH)
        # kernels: every published MiT uses <= 8; 64 keeps a C x C x k x k weight plausible
        self.patch_sizes = _int_list('patch_sizes', patch_sizes, num_stages, MAX_KERNEL)
        self.strides = _int_list('strides', strides, num_stages, MAX_KERNEL)
        self.sr_ratios = _int_list('sr_ratios', sr_ratios, num_stages, MAX_KERNEL)
        self.mlp_ratio = check_size_limit('mlp_ratio', mlp_ratio, 64)
        for name, value in (('qkv_bias', qkv_bias), ('with_cp', with_cp),
                            ('norm_eval', norm_eval)):
            check_bool(name, value)
        self.drop_rate = check_rate('drop_rate', drop_rate)
        self.attn_drop_rate = check_rate('attn_drop_rate', attn_drop_rate)
        self.drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        self.act_cfg = check_act_cfg(act_cfg)
        self.norm_cfg = check_token_norm_cfg(norm_cfg, 'MiT')
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages)
        self.qkv_bias, self.with_cp, self.norm_eval = qkv_bias, with_cp, norm_eval
        widths = [self.embed_dims * h for h in self.num_heads]
        for i, width in enumerate(widths):
            check_size_limit(f'embed_dims * num_heads[{i}]', width, MAX_WIDTH)
        for i, width in enumerate(widths):
            check_size_limit(f'mlp_ratio * embed_dims * num_heads[{i}]', self.mlp_ratio * width,
                             MAX_WIDTH, 'the Mix-FFN width')

        # stochastic depth over all blocks (mmseg's linspace, also over the unbuilt ones)
        dpr = torch.linspace(0, self.drop_path_rate, sum(self.num_layers),
                             device='cpu').tolist()
        self.num_built = max(self.out_indices) + 1
        self.layers = nn.ModuleList()
        channels, first = self.in_channels, 0
        for i in range(self.num_built):
            width = widths[i]
            patch_embed = OverlapPatchEmbed(channels, width, self.patch_sizes[i],
                                            self.strides[i], self.norm_cfg)
            blocks = nn.ModuleList(
                MiTBlock(width, self.num_heads[i], self.mlp_ratio * width, self.drop_rate,
                         self.attn_drop_rate, dpr[first + j], qkv_bias, self.act_cfg,
                         self.norm_cfg, self.sr_ratios[i], with_cp)
                for j in range(self.num_layers[i]))
            norm = build_norm(self.norm_cfg, width)[1]
            self.layers.append(nn.ModuleList([patch_embed, blocks, norm]))
            channels, first = width, first + self.num_layers[i]
        strides = [math.prod(self.strides[:i + 1]) for i in range(self.num_stages)]
        self._set_outputs([widths[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return patch_stage_groups(self.layers, self.num_stages, self.num_built)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, sum(num_layers) + 2)`` for layer-wise lr decay: 0 the first patch
        embedding, one depth per block (a later stage's patch embedding with its first block,
        a stage norm with its last), the last depth anything else (a head)."""
        return patch_stage_layer_depth(param_name, prefix, self.num_layers)

    def init_weights(self):
        """``init_cfg`` (a Pretrained checkpoint, ...) as mmengine applies it; without one,
        mmseg's init (reported in the one-line init summary like an ``init_cfg`` would be)."""
        if self.init_cfg is not None or self._is_init:
            return super().init_weights()
        run_host_init(self, lambda: trunc_normal_linear_init(self),
                      "mmseg's MiT init (trunc-normal Linear, unit LayerNorm, fan-out normal "
                      "Conv2d)")
        return None

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: ``layers.spatial_reduction.ScriptableTokenStages``,
        this forward over the same modules without the input-size checks, a list of the same
        maps."""
        from ..layers.spatial_reduction import ScriptableTokenStages
        return ScriptableTokenStages(self.layers, self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self.check_input(x)
        outs = {}
        for i, (patch_embed, blocks, norm) in enumerate(self.layers):
            x, hw = patch_embed(x)
            for block in blocks:
                x = block(x, hw)
            x = tokens_to_map(norm(x), hw)
            if i in self.out_indices:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)
