"""Blocks of Twins (https://arxiv.org/abs/2104.13840), under mmpretrain 1.2's parameter names:
global sub-sampled attention (GSA: ``q``, ``kv``, ``proj``, ``sr``, ``norm``; the spatial
reduction of PVT through :func:`~.spatial_reduction.reduced_attention`), locally-grouped
self-attention (LSA: ``qkv``, ``proj`` over non-overlapping windows), their pre-norm encoder
layers with mmcv's FFN (``ffn.layers.0.0``, ``ffn.layers.1``), and the conditional position
encoding (``proj``: a 3x3 depth-wise conv added to the tokens).

Drop path, as upstream: mmpretrain's/mmseg's GSA and FFN apply their own drop path before the
layer's, so a GSA layer drops each branch twice and an LSA layer its FFN branch twice (both
hold no parameters and act only in training).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from .drop import DropPath
from .ffn import FFN
from .norm import build_norm
from .spatial_reduction import map_to_tokens, reduced_attention, tokens_to_map


def _drop_path(rate: float) -> nn.Module:
    return DropPath(rate) if rate > 0 else nn.Identity()


class GlobalSubsampledAttention(nn.Module):
    """GSA: queries from every token, keys and values from the tokens reduced by a
    ``sr_ratio``-strided conv and a norm. ``proj_bias``: the output projection's bias (mmseg
    drops it with ``qkv_bias=False``, mmpretrain keeps it). ``forward(x, hw)`` -> ``(N, L, C)``
    (no residual)."""

    def __init__(self, embed_dims: int, num_heads: int, norm_cfg: dict = dict(type='LN'),
                 qkv_bias: bool = True, sr_ratio: int = 1, attn_drop: float = 0.,
                 proj_drop: float = 0., drop_path: float = 0., proj_bias: bool = True):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.embed_dims, self.num_heads, self.sr_ratio = embed_dims, num_heads, sr_ratio
        self.attn_drop = float(attn_drop)
        # mmpretrain's MultiheadAttention registers proj first, then GSA adds q and kv
        self.proj = nn.Linear(embed_dims, embed_dims, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()
        self.out_drop = _drop_path(drop_path)
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, embed_dims * 2, bias=qkv_bias)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = build_norm(norm_cfg, embed_dims)[1]

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        kv_in = x
        if hasattr(self, 'sr'):  # sr_ratio > 1 (TorchScript resolves hasattr when compiling)
            kv_in = self.norm(map_to_tokens(self.sr(tokens_to_map(x, hw))))
        out = reduced_attention(x, kv_in, self.num_heads, self.q.weight, self.q.bias,
                                self.kv.weight, self.kv.bias,
                                self.attn_drop if self.training else 0.)
        return self.out_drop(self.proj_drop(self.proj(out)))

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, ' \
               f'sr_ratio={self.sr_ratio}'


def _window_mask(hp: int, wp: int, pad_b: int, pad_r: int, window: int,
                 device: torch.device) -> Optional[torch.Tensor]:
    """mmpretrain's/mmseg's LSA mask, ``(1, windows, 1, w*w, w*w)`` with -1000 between a padded
    and an unpadded position, or None when it masks nothing. Upstream marks the padded rows as
    ``mask[:, -pad_b:, :]``: with ``pad_b == 0`` that slice is the whole map (likewise columns),
    so with padding on one side only every position is "padded" and nothing is masked; this
    function keeps that behaviour (it decides the numbers of the released weights)."""
    if pad_b == 0 or pad_r == 0:
        return None  # all positions marked alike (see above): an all-zero mask
    mask = torch.zeros(hp, wp, device=device)
    mask[-pad_b:, :] = 1
    mask[:, -pad_r:] = 1
    mask = mask.reshape(hp // window, window, wp // window, window).transpose(1, 2)
    mask = mask.reshape(1, -1, window * window)
    diff = mask.unsqueeze(2) - mask.unsqueeze(3)
    return torch.where(diff != 0, -1000.0, 0.0).unsqueeze(2)


class LocallyGroupedSelfAttention(nn.Module):
    """LSA: self-attention inside non-overlapping ``window_size`` windows (the map zero-padded
    at the bottom/right to a multiple of the window, masked as upstream). ``forward(x, hw)`` ->
    ``(N, L, C)`` (no residual)."""

    def __init__(self, embed_dims: int, num_heads: int = 8, qkv_bias: bool = False,
                 qk_scale: Optional[float] = None, attn_drop_rate: float = 0.,
                 proj_drop_rate: float = 0., window_size: int = 1):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.embed_dims, self.num_heads, self.window_size = embed_dims, num_heads, window_size
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        self.attn_drop = float(attn_drop_rate)
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate) if proj_drop_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        n, length, c = x.shape
        (h, w), ws, heads = hw, self.window_size, self.num_heads
        x = x.view(n, h, w, c)
        pad_r, pad_b = (ws - w % ws) % ws, (ws - h % ws) % ws
        if pad_r or pad_b:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        gh, gw = hp // ws, wp // ws
        x = x.reshape(n, gh, ws, gw, ws, c).transpose(2, 3)
        qkv = self.qkv(x).reshape(n, gh * gw, ws * ws, 3, heads, c // heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)
        mask = _window_mask(hp, wp, pad_b, pad_r, ws, x.device)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if mask is None else mask.to(q.dtype),
            dropout_p=self.attn_drop if self.training else 0., scale=self.scale)
        out = out.transpose(2, 3).reshape(n, gh, gw, ws, ws, c).transpose(2, 3)
        out = out.reshape(n, hp, wp, c)
        if pad_r or pad_b:
            out = out[:, :h, :w, :]
        return self.proj_drop(self.proj(out.reshape(n, length, c)))

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, ' \
               f'window_size={self.window_size}'


class TwinsEncoderLayer(nn.Module):
    """``x + drop_path(attn(norm1(x)))``, then ``x + drop_path(ffn(norm2(x)))``; ``attn`` a GSA
    (``window_size=None``) or an LSA (``window_size`` given). The FFN is mmcv's
    (``layers.0.0``, ``layers.1``) with its own drop path, as upstream."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 qkv_bias: bool = True, act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'), sr_ratio: int = 1,
                 window_size: Optional[int] = None, proj_bias: bool = True,
                 with_cp: bool = False):
        super().__init__()
        self.norm1 = build_norm(norm_cfg, embed_dims)[1]
        if window_size is None:
            self.attn = GlobalSubsampledAttention(
                embed_dims, num_heads, norm_cfg, qkv_bias, sr_ratio, attn_drop_rate, drop_rate,
                drop_path_rate, proj_bias)
        else:
            self.attn = LocallyGroupedSelfAttention(embed_dims, num_heads, qkv_bias, None,
                                                    attn_drop_rate, drop_rate, window_size)
        self.norm2 = build_norm(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, feedforward_channels, act_cfg, drop_rate)
        self.ffn_drop_path = _drop_path(drop_path_rate)
        self.drop_path = _drop_path(drop_path_rate)
        self.with_cp = with_cp

    def _inner_forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.ffn_drop_path(self.ffn(self.norm2(x))))

    @torch.jit.unused
    def _checkpointed(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        # (a training-time memory trade: TorchScript compiles no checkpoint)
        return cp.checkpoint(self._inner_forward, x, hw, use_reentrant=False)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        if self.with_cp and x.requires_grad and not torch.jit.is_scripting():
            return self._checkpointed(x, hw)
        return self._inner_forward(x, hw)


class ConditionalPositionEncoding(nn.Module):
    """``x + dwconv3x3(x)`` on the token map (stride 1), as mmpretrain's CPE (``proj``)."""

    def __init__(self, in_channels: int, embed_dims: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, 3, 1, 1, bias=True, groups=embed_dims)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        feat = tokens_to_map(x, hw)
        return map_to_tokens(self.proj(feat) + feat)


class ScriptableTwins(nn.Module):
    """:class:`~mmbackbones.models.backbones.twins.PCPVT`'s forward in TorchScript's subset
    (without its input-size checks), over the same modules: a list of the ``out_indices`` maps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.patch_embeds = model.patch_embeds
        self.position_encoding_drops = model.position_encoding_drops
        self.stages = model.stages
        self.position_encodings = model.position_encodings
        self.norms = nn.ModuleList([model._modules[f'norm_after_stage{i}']
                                    for i in range(model.num_built)])
        self.out_indices: List[int] = [int(i) for i in model.out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats: List[torch.Tensor] = []
        for i, (embed, drop, stage, pos, norm) in enumerate(zip(
                self.patch_embeds, self.position_encoding_drops, self.stages,
                self.position_encodings, self.norms)):
            x, hw = embed(x)
            x = drop(x)
            for j, layer in enumerate(stage):
                x = layer(x, hw)
                if j == 0:
                    x = pos(x, hw)
            x = tokens_to_map(norm(x), hw).contiguous()
            feats.append(x)
        return [feats[i] for i in self.out_indices]


__all__ = ['ScriptableTwins', 'GlobalSubsampledAttention', 'LocallyGroupedSelfAttention', 'TwinsEncoderLayer',
           'ConditionalPositionEncoding']
