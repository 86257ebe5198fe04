"""Blocks of the spatial-reduction transformers (MiT/SegFormer, PVT v1/v2, Twins): token <-> map
reshapes, the conv patch embedding with explicit padding, attention whose keys and values come
from a strided-conv reduction of the tokens, the (Mix-)FFN on the token map, and the pre-norm
block that combines them (mmseg's/mmdet's ``nn.MultiheadAttention`` names).

Also the argument checks these families share (per-stage int lists, token norms, activations).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from ...utils.validation import check_size_limit, to_plain
from .drop import DropPath
from .ffn import build_act
from .norm import build_norm, check_norm_cfg


def tokens_to_map(x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """``(N, H * W, C)`` -> ``(N, C, H, W)`` (a view: channels-last strides for contiguous
    tokens, which the convolutions take as they are)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], hw[0], hw[1])


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> contiguous ``(N, H * W, C)``. Contiguous matters: tokens in a
    transposed layout give the next convolutions mixed memory formats, which oneDNN reorders on
    every call (MiT-B2's CPU training step ran 1.4x slower than mmseg's without it)."""
    return x.flatten(2).transpose(1, 2).contiguous()


def stage_int_list(name: str, value, length: Optional[int], limit: int) -> Tuple[int, ...]:
    """A per-stage list of positive ints, ``length`` entries, each ``<= limit``."""
    value = to_plain(value)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f'{name} must be a list/tuple of ints, got {value!r} '
                        f'({type(value).__name__})')
    if length is not None and len(value) != length:
        raise ValueError(f'{name} must have num_stages={length} entries (one per stage), got '
                         f'{len(value)}: {list(value)!r}')
    return tuple(check_size_limit(f'each of {name}', v, limit) for v in value)


def check_act_cfg(act_cfg) -> dict:
    """A buildable activation config (``dict(type='GELU')``), as a new dict."""
    if not isinstance(act_cfg, dict) or 'type' not in act_cfg:
        raise TypeError(f'act_cfg must be a dict with a "type" key (e.g. dict(type="GELU")), '
                        f'got {act_cfg!r}')
    try:
        build_act(dict(act_cfg))
    except KeyError as err:
        raise KeyError(f'act_cfg type {act_cfg["type"]!r} is not a registered activation '
                       f'(GELU, ReLU, ...): {err}') from None
    return dict(act_cfg)


def check_token_norm_cfg(norm_cfg, family: str, name: str = 'norm_cfg') -> dict:
    """A norm config whose layer normalises ``(N, L, C)`` tokens (LayerNorm-like)."""
    norm_cfg = check_norm_cfg(norm_cfg)
    if isinstance(build_norm(norm_cfg, 16)[1], (_BatchNorm, nn.GroupNorm, _InstanceNorm)):
        raise ValueError(f'{name} {norm_cfg!r}: {family} normalises (N, L, C) token sequences, '
                         f'which needs a LayerNorm-like layer (dict(type="LN", ...)); batch, '
                         f'group and instance norms expect (N, C, ...) maps')
    return norm_cfg


def check_stage_grids(name: str, size: Tuple[int, int], stages) -> None:
    """Refuse an input too small for the stages: ``stages`` lists ``(kernel, stride, padding,
    sr_ratio)`` per built stage (``padding=None``: the map is zero-padded at the bottom/right to
    a multiple of the stride, as mmcv's ``'corner'``). Each patch embedding needs its kernel to
    fit the padded map and each reduction conv ``sr_ratio`` rows and columns. Skipped while
    exporting (the sizes are symbolic there; the exported graph takes any size that fits)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    h, w = size
    if h == 0 or w == 0:
        return
    for i, (kernel, stride, padding, sr) in enumerate(stages):
        sides = []
        for side in (h, w):
            if padding is None:
                side = -(-side // stride) * stride + max(kernel - stride, 0)
                padded = side
            else:
                padded = side + 2 * padding
            sides.append((padded - kernel) // stride + 1 if padded >= kernel else 0)
        if min(sides) < max(sr, 1):
            raise ValueError(f'{name}: the input size {tuple(size)} is too small: stage {i + 1} '
                             f'would get a {sides[0]}x{sides[1]} map, and needs at least '
                             f'{max(sr, 1)}x{max(sr, 1)} (its patch embedding kernel {kernel}, '
                             f'key/value reduction {sr}); use a larger image')
        h, w = sides


class OverlapPatchEmbed(nn.Module):
    """A ``kernel``-sized, ``stride``-strided conv with ``padding`` zero padding (default
    ``kernel // 2``), then a norm: ``(N, C, H, W)`` -> ``(N, Hp * Wp, embed_dims)`` and
    ``(Hp, Wp)``, with ``Hp = (H + 2 * padding - kernel) // stride + 1`` (mmseg's/mmdet's
    ``PatchEmbed`` with an int padding). Keys ``projection.*``, ``norm.*``."""

    def __init__(self, in_channels: int, embed_dims: int, kernel_size: int, stride: int,
                 norm_cfg: dict, padding: Optional[int] = None):
        super().__init__()
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size, stride,
                                    padding=kernel_size // 2 if padding is None else padding)
        self.norm = build_norm(norm_cfg, embed_dims)[1]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.projection(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(map_to_tokens(x)), hw


class InOutProj(nn.Module):
    """The parameters of an ``nn.MultiheadAttention``, under its names: ``in_proj_weight``
    (``[q; k; v]`` rows), ``in_proj_bias``, ``out_proj`` (a Linear). ``bias`` covers both
    projections, as ``nn.MultiheadAttention(bias=...)`` does."""

    def __init__(self, embed_dims: int, bias: bool):
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dims, embed_dims))
        self.register_parameter(
            'in_proj_bias', nn.Parameter(torch.zeros(3 * embed_dims)) if bias else None)
        self.out_proj = nn.Linear(embed_dims, embed_dims, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # nn.MultiheadAttention's own init


def reduced_attention(x: torch.Tensor, kv_in: torch.Tensor, heads: int, q_weight: torch.Tensor,
                      q_bias: Optional[torch.Tensor], kv_weight: torch.Tensor,
                      kv_bias: Optional[torch.Tensor], dropout_p: float = 0.) -> torch.Tensor:
    """Multi-head attention of the tokens ``x`` ``(N, L, C)`` over ``kv_in`` ``(N, L', C)``:
    queries ``x @ q_weight.T``, keys and values from ``kv_in @ kv_weight.T`` (``[k; v]`` rows),
    through ``scaled_dot_product_attention``. Returns ``(N, L, C)`` before the output
    projection."""
    n, length, c = x.shape
    q = F.linear(x, q_weight, q_bias).reshape(n, length, heads, c // heads).transpose(1, 2)
    kv = F.linear(kv_in, kv_weight, kv_bias)
    k, v = kv.reshape(n, kv.shape[1], 2, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    return out.transpose(1, 2).reshape(n, length, c)


class EfficientSelfAttention(nn.Module):
    """Self-attention whose keys and values come from the tokens reduced by a
    ``sr_ratio``-strided conv (``sr``) and a norm (``norm``); ``sr_ratio=1``: plain attention.

    ``forward(x, hw)``: ``(N, L, C)`` tokens on an ``hw`` grid -> ``(N, L, C)`` (no residual).
    """

    def __init__(self, embed_dims: int, num_heads: int, attn_drop: float = 0.,
                 proj_drop: float = 0., qkv_bias: bool = True, norm_cfg: dict = dict(type='LN'),
                 sr_ratio: int = 1):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.embed_dims, self.num_heads, self.sr_ratio = embed_dims, num_heads, sr_ratio
        self.attn_drop = float(attn_drop)
        self.attn = InOutProj(embed_dims, qkv_bias)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = build_norm(norm_cfg, embed_dims)[1]

    def reduce(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        """The key/value tokens: ``norm(sr(x))`` on the map, or ``x`` itself."""
        if hasattr(self, 'sr'):  # sr_ratio > 1 (TorchScript resolves hasattr when compiling)
            return self.norm(map_to_tokens(self.sr(tokens_to_map(x, hw))))
        return x

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        c = x.shape[2]
        weight, bias = self.attn.in_proj_weight, self.attn.in_proj_bias
        out = reduced_attention(x, self.reduce(x, hw), self.num_heads, weight[:c],
                                None if bias is None else bias[:c], weight[c:],
                                None if bias is None else bias[c:],
                                self.attn_drop if self.training else 0.)
        return self.proj_drop(self.attn.out_proj(out))

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, ' \
               f'sr_ratio={self.sr_ratio}'


class MixFFN(nn.Module):
    """``layers``: 1x1 conv (``0``), 3x3 depth-wise conv (``1``), activation, dropout, 1x1 conv
    (``4``), dropout, on the token map. ``use_conv=False`` (PVT v1): no depth-wise conv, the
    second 1x1 conv is ``layers.3``. ``forward(x, hw)`` -> ``(N, L, C)`` (no residual)."""

    def __init__(self, embed_dims: int, feedforward_channels: int,
                 act_cfg: dict = dict(type='GELU'), ffn_drop: float = 0.,
                 use_conv: bool = True):
        super().__init__()
        hidden = feedforward_channels
        layers = [nn.Conv2d(embed_dims, hidden, 1), build_act(act_cfg), nn.Dropout(ffn_drop),
                  nn.Conv2d(hidden, embed_dims, 1), nn.Dropout(ffn_drop)]
        if use_conv:
            layers.insert(1, nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        return map_to_tokens(self.layers(tokens_to_map(x, hw)))


class SRBlock(nn.Module):
    """``x + drop_path(attn(norm1(x)))``, then ``x + drop_path(ffn(norm2(x)))`` (mmseg's MiT
    ``TransformerEncoderLayer``, mmdet's ``PVTEncoderLayer``; their dropout and drop path hold
    no parameters). ``use_conv_ffn=False``: PVT v1's FFN without the depth-wise conv."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 qkv_bias: bool = True, act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'), sr_ratio: int = 1, with_cp: bool = False,
                 use_conv_ffn: bool = True):
        super().__init__()
        self.norm1 = build_norm(norm_cfg, embed_dims)[1]
        self.attn = EfficientSelfAttention(embed_dims, num_heads, attn_drop_rate, drop_rate,
                                           qkv_bias, norm_cfg, sr_ratio)
        self.norm2 = build_norm(norm_cfg, embed_dims)[1]
        self.ffn = MixFFN(embed_dims, feedforward_channels, act_cfg, drop_rate, use_conv_ffn)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.with_cp = with_cp

    def _inner_forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.ffn(self.norm2(x), hw))

    @torch.jit.unused
    def _checkpointed(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        # (a training-time memory trade: TorchScript compiles no checkpoint)
        return cp.checkpoint(self._inner_forward, x, hw, use_reentrant=False)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        if self.with_cp and x.requires_grad and not torch.jit.is_scripting():
            return self._checkpointed(x, hw)
        return self._inner_forward(x, hw)


class ScriptableTokenStages(nn.Module):
    """The forward of PVT / MiT (``layers``: per stage ``[patch_embed, blocks, norm]``) in
    TorchScript's subset, without the input-size checks, over the same modules: a list of the
    ``out_indices`` maps."""

    def __init__(self, layers: nn.ModuleList, out_indices):
        super().__init__()
        self.patch_embeds = nn.ModuleList([layer[0] for layer in layers])
        self.blocks = nn.ModuleList([layer[1] for layer in layers])
        self.norms = nn.ModuleList([layer[2] for layer in layers])
        self.out_indices: List[int] = [int(i) for i in out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats: List[torch.Tensor] = []
        for patch_embed, blocks, norm in zip(self.patch_embeds, self.blocks, self.norms):
            x, hw = patch_embed(x)
            for block in blocks:
                x = block(x, hw)
            x = tokens_to_map(norm(x), hw)
            feats.append(x)
        return [feats[i] for i in self.out_indices]


__all__ = ['check_stage_grids', 'tokens_to_map', 'map_to_tokens', 'stage_int_list', 'check_act_cfg',
           'check_token_norm_cfg', 'OverlapPatchEmbed', 'InOutProj', 'reduced_attention',
           'EfficientSelfAttention', 'MixFFN', 'SRBlock', 'ScriptableTokenStages']


def patch_stage_groups(layers: nn.ModuleList, num_stages: int, num_built: int) -> list:
    """``stem_and_stages()`` of the ``layers[i] = [patch embedding, blocks, norm]`` layout (MiT,
    PVT): the first patch embedding is the stem, stage 1 its blocks and norm, a later stage its
    whole entry, ``None`` for the stages not built. Throwaway containers: the modules stay
    registered under their own names."""
    groups = [layers[0][0]]
    for i in range(num_stages):
        if i >= num_built:
            groups.append(None)
        elif i == 0:
            groups.append(nn.ModuleList([layers[0][1], layers[0][2]]))
        else:
            groups.append(layers[i])
    return groups
