"""Swin Transformer (`Hierarchical Vision Transformer using Shifted Windows
<https://arxiv.org/abs/2103.14030>`_).

Parameter names follow mmpretrain 1.2.0's ``SwinTransformer`` (``patch_embed.projection``,
``stages.{i}.blocks.{j}.attn.w_msa.*``, ``stages.{i}.blocks.{j}.ffn.layers.*``,
``stages.{i}.downsample.*``, ``norm{i}``), so its checkpoints load with ``prefix='backbone'``;
timm checkpoints load through :func:`mmbackbones.checkpoint.converters.timm_swin.convert_timm_swin`.

Any input size works: the image is padded to a multiple of the patch size, every attention layer
pads its map to a multiple of the window, and patch merging pads odd sides. Stage ``i``
(0-based) has ``embed_dims * 2 ** i`` channels and stride ``patch_size * 2 ** i``; an ``H x W``
input gives ``ceil(H / stride) x ceil(W / stride)`` maps. Internally maps are kept as
``(N, H, W, C)``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_IMAGE_SIDE, MAX_WIDTH, check_bool, check_choice,
                                 check_frozen_stages, check_positive_int, check_rate,
                                 check_size_limit, normalize_out_indices)
from ..base import BaseBackbone
from ..layers.drop import DropPath
from ..layers.norm import build_norm, check_norm_cfg
from ..layers.window_attention import ShiftWindowMSA, resize_relative_position_bias_table

_TINY = dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24])
_SMALL = dict(embed_dims=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24])
_BASE = dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])
_LARGE = dict(embed_dims=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48])
# mmpretrain's table, with its one-letter aliases.
arch_zoo = {'t': _TINY, 'tiny': _TINY, 's': _SMALL, 'small': _SMALL,
            'b': _BASE, 'base': _BASE, 'l': _LARGE, 'large': _LARGE}


def _pair(name: str, value) -> Tuple[int, int]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return check_positive_int(name, value[0]), check_positive_int(name, value[1])
    if isinstance(value, (list, tuple)):
        raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
    value = check_positive_int(name, value)
    return value, value


class SwinPatchEmbed(nn.Module):
    """``patch x patch`` conv (stride ``patch``) and LayerNorm: ``(N, C_in, H, W)`` ->
    ``(N, ceil(H/patch), ceil(W/patch), C)``. The input is zero-padded at the bottom/right to a
    multiple of the patch (mmcv's ``padding='corner'``)."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size=patch_size,
                                    stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        pad_b, pad_r = -x.shape[2] % p, -x.shape[3] % p
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))
        return self.norm(self.projection(x).permute(0, 2, 3, 1))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token: ``(N, H, W, C)`` -> ``(N, ceil(H/2), ceil(W/2), out)``.

    The ``4C`` features of a 2x2 patch are ordered channel-major (``c * 4 + dy * 2 + dx``), the
    order of mmcv's ``nn.Unfold``-based ``PatchMerging`` that mmpretrain checkpoints hold; odd
    sides are zero-padded at the bottom/right.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm = nn.LayerNorm(4 * in_channels)
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
            h, w = h + h % 2, w + w % 2
        x = x.view(n, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 5, 2, 4)
        x = x.reshape(n, h // 2, w // 2, 4 * c)
        return self.reduction(self.norm(x))


class SwinFFN(nn.Module):
    """Linear -> GELU -> Linear on ``(..., C)``; ``layers.0.0`` and ``layers.1`` as in mmcv's
    ``FFN`` (whose checkpoints mmpretrain's Swin holds)."""

    def __init__(self, embed_dims: int, feedforward_channels: int, drop: float = 0.):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.GELU(),
                          nn.Dropout(drop)),
            nn.Linear(feedforward_channels, embed_dims),
            nn.Dropout(drop))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SwinBlock(nn.Module):
    """``x + DropPath(W-MSA(LN(x)))`` then ``x + DropPath(FFN(LN(x)))`` on ``(N, H, W, C)``;
    odd blocks of a stage shift their windows by ``window_size // 2``."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7,
                 shift: bool = False, ffn_ratio: float = 4., drop_path: float = 0.,
                 pad_small_map: bool = False, with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size,
                                   shift_size=window_size // 2 if shift else 0,
                                   pad_small_map=pad_small_map)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = SwinFFN(embed_dims, int(embed_dims * ffn_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.ffn(self.norm2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class SwinBlockSequence(nn.Module):
    """The blocks of one stage (``blocks``) and the patch merging after it (``downsample``,
    ``None`` for the last stage or when nothing after it is computed)."""

    def __init__(self, embed_dims: int, depth: int, num_heads: int, window_size: int,
                 downsample: bool, drop_paths: Sequence[float], pad_small_map: bool,
                 with_cp: bool):
        super().__init__()
        self.embed_dims = embed_dims
        self.blocks = nn.ModuleList([
            SwinBlock(embed_dims, num_heads, window_size, shift=j % 2 == 1,
                      drop_path=drop_paths[j], pad_small_map=pad_small_map, with_cp=with_cp)
            for j in range(depth)])
        self.downsample = PatchMerging(embed_dims, 2 * embed_dims) if downsample else None

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


@MODELS.register_module()
class SwinTransformer(BaseBackbone):
    """Swin Transformer backbone with mmpretrain's parameter names.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` (or ``'t'``,
            ``'s'``, ``'b'``, ``'l'``), or ``dict(embed_dims=..., depths=[...], num_heads=[...])``.
        img_size (int | tuple): the usual input size; only sizes ``absolute_pos_embed`` (inputs
            of other sizes are accepted, the embedding is resized on the fly).
        patch_size (int): patch embedding kernel and stride.
        in_channels (int): input image channels.
        window_size (int): attention window side. A checkpoint trained with another window size
            loads: its relative position bias tables are resized (bicubic) on load.
        drop_rate (float): dropout after the patch embedding.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
        out_indices (int | Sequence[int]): stages (0-based) to return, in this order. Only what
            they need is built.
        out_after_downsample (bool): return each stage after its patch merging (mmpretrain's
            option): stage ``i < last`` then has ``2x`` channels and ``2x`` stride.
        use_abs_pos_embed (bool): add a learned absolute position embedding after the patch
            embedding.
        interpolate_mode (str): how ``absolute_pos_embed`` is resized.
        with_cp (bool): gradient checkpointing of each block.
        frozen_stages (int): ``-1`` nothing, ``0`` the patch embedding, ``k`` it and stages
            ``1..k`` (with their patch merging and output norms). mmpretrain counts from 0
            (its ``frozen_stages=k`` is ``k + 1`` here); mmdet's Swin counts as here.
        norm_eval (bool): keep BatchNorm layers in eval mode (Swin has none; kept for the
            contract).
        pad_small_map (bool): drop the shift where a map side equals the window unless True
            (see :class:`~mmbackbones.models.layers.window_attention.ShiftWindowMSA`).
        norm_cfg (dict | None): the output norms ``norm{i}``; ``None`` returns raw stage maps.
        init_cfg (dict | list[dict], optional): mmengine init config.

    Outputs: a tuple of ``(N, C_i, H_i, W_i)`` maps in ``out_indices`` order, named
    ``stage{i + 1}``.
    """

    arch_zoo = arch_zoo
    # mmpretrain's state-dict version: version-3 checkpoints have ``norm{i}`` and no attn_mask.
    _version = 3

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 4,
                 in_channels: int = 3,
                 window_size: int = 7,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Union[int, Sequence[int]] = (3, ),
                 out_after_downsample: bool = False,
                 use_abs_pos_embed: bool = False,
                 interpolate_mode: str = 'bicubic',
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 pad_small_map: bool = False,
                 norm_cfg: Optional[dict] = dict(type='LN'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        settings = self._parse_arch(arch)
        self.embed_dims = settings['embed_dims']
        self.depths = list(settings['depths'])
        self.num_heads = list(settings['num_heads'])
        self.num_layers = len(self.depths)
        self.img_size = _pair('img_size', img_size)
        for side in self.img_size:
            check_size_limit('img_size', side, MAX_IMAGE_SIDE, 'a side of absolute_pos_embed')
        self.patch_size = check_positive_int('patch_size', patch_size)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.window_size = check_size_limit('window_size', window_size, MAX_IMAGE_SIDE)
        drop_rate = check_rate('drop_rate', drop_rate)
        drop_path_rate = check_rate('drop_path_rate', drop_path_rate)
        for name, value in (('out_after_downsample', out_after_downsample),
                            ('use_abs_pos_embed', use_abs_pos_embed), ('with_cp', with_cp),
                            ('norm_eval', norm_eval), ('pad_small_map', pad_small_map)):
            check_bool(name, value)
        self.interpolate_mode = check_choice(
            'interpolate_mode', interpolate_mode, ('bicubic', 'bilinear', 'nearest'))
        if norm_cfg is not None:
            check_norm_cfg(norm_cfg)
        self.out_indices = normalize_out_indices(out_indices, self.num_layers)
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_layers)
        self.norm_eval = norm_eval
        self.out_after_downsample = out_after_downsample
        self.use_abs_pos_embed = use_abs_pos_embed
        last_built = max(self.out_indices)

        self.patch_embed = SwinPatchEmbed(in_channels, self.embed_dims, patch_size)
        self.patch_resolution = tuple(-(-s // patch_size) for s in self.img_size)
        if use_abs_pos_embed:
            num_patches = self.patch_resolution[0] * self.patch_resolution[1]
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, num_patches, self.embed_dims))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=.02)
        self.drop_after_pos = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

        # Rates spread over all blocks of the full arch, so a truncated backbone keeps them.
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths), device='cpu').tolist()
        self.stages = nn.ModuleList()
        channels, strides, dims = [], [], self.embed_dims
        for i in range(last_built + 1):
            # Patch merging after stage i feeds stage i + 1, or the output of stage i itself
            # with out_after_downsample; without either it would be unused, so not built.
            has_next = i < self.num_layers - 1
            downsample = has_next and (i < last_built or out_after_downsample)
            start = sum(self.depths[:i])
            self.stages.append(SwinBlockSequence(
                dims, self.depths[i], self.num_heads[i], window_size, downsample,
                dpr[start:start + self.depths[i]], pad_small_map, with_cp))
            after = out_after_downsample and has_next
            channels.append(2 * dims if after else dims)
            strides.append(patch_size * 2 ** (i + 1 if after else i))
            dims *= 2 if has_next else 1
        self.num_features = channels
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm(norm_cfg, channels[i])[1]
                            if norm_cfg is not None else nn.Identity())

        self._register_load_state_dict_pre_hook(self._prepare_checkpoint)
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides[i] for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        keys = {'embed_dims', 'depths', 'num_heads'}
        if isinstance(arch, str):
            check_choice('arch', arch.lower(), cls.arch_zoo)
            return cls.arch_zoo[arch.lower()]
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be one of {sorted(cls.arch_zoo)} or a dict with keys '
                            f'{sorted(keys)}, got {arch!r}')
        if set(arch) != keys:
            raise KeyError(f'arch dict must have exactly the keys {sorted(keys)}, got '
                           f'{sorted(arch)}')
        check_positive_int('arch["embed_dims"]', arch['embed_dims'])
        depths, heads = arch['depths'], arch['num_heads']
        if (not isinstance(depths, (list, tuple)) or not isinstance(heads, (list, tuple))
                or not depths or len(depths) != len(heads)):
            raise ValueError(f'arch "depths" and "num_heads" must be non-empty lists of the same '
                             f'length, got depths={depths!r}, num_heads={heads!r}')
        for i, (d, h) in enumerate(zip(depths, heads)):
            check_size_limit('arch["depths"] entry', d, MAX_BLOCKS)
            check_positive_int('arch["num_heads"] entry', h)
            dims = check_size_limit(f'arch["embed_dims"] * 2**{i} (stage {i} channels)',
                                    arch['embed_dims'] * 2 ** i, MAX_WIDTH)
            if dims % h:
                raise ValueError(f'arch: stage {i} has {dims} channels, not divisible by its '
                                 f'num_heads={h}')
        return arch

    # ----- freezing ------------------------------------------------------------------------
    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        groups = [self.patch_embed]
        for i, stage in enumerate(self.stages):
            parts = [stage]
            if i in self.out_indices:
                parts.append(getattr(self, f'norm{i}'))
            groups.append(nn.ModuleList(parts))
        return groups

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.frozen_stages >= 0 and self.use_abs_pos_embed:
            self.absolute_pos_embed.requires_grad = False

    # ----- checkpoint loading --------------------------------------------------------------
    def _prepare_checkpoint(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Adapt an mmpretrain/mmcls checkpoint to this model before it is loaded.

        * ``norm.*`` (mmcls checkpoints before version 2) -> ``norm{last stage}.*``;
        * ``attn_mask`` buffers (before version 3) are dropped (masks are computed per size);
        * relative position bias tables of another window size are resized, and the matching
          ``relative_position_index`` is replaced by this model's;
        * ``absolute_pos_embed`` of another ``img_size`` is resized.
        """
        last = self.num_layers - 1
        for key in [k for k in state_dict if k.startswith(prefix + 'norm.')]:
            new = prefix + f'norm{last}.' + key[len(prefix + 'norm.'):]
            if new not in state_dict:
                state_dict[new] = state_dict.pop(key)
        for key in [k for k in state_dict if k.startswith(prefix) and k.endswith('attn_mask')]:
            del state_dict[key]
        for name, param in self.named_parameters():
            if not name.endswith('relative_position_bias_table'):
                continue
            table = state_dict.get(prefix + name)
            if table is None:
                continue
            index_name = name.replace('relative_position_bias_table', 'relative_position_index')
            if table.shape != param.shape:
                if table.dim() != 2 or table.shape[1] != param.shape[1]:
                    continue  # a real mismatch (heads): let load_state_dict report it
                window = self.get_submodule(name.rsplit('.', 1)[0]).window_size
                state_dict[prefix + name] = resize_relative_position_bias_table(table, window)
                state_dict.pop(prefix + index_name, None)
            # The index is derived from the window size, not learned: checkpoints without it
            # (timm's) or with another window's get this model's.
            state_dict.setdefault(prefix + index_name, self.get_buffer(index_name).clone())
        key = prefix + 'absolute_pos_embed'
        if self.use_abs_pos_embed and key in state_dict:
            pos = state_dict[key]
            if pos.dim() == 3 and pos.shape != self.absolute_pos_embed.shape:
                side = int(round(pos.shape[1] ** 0.5))
                if side * side == pos.shape[1]:
                    state_dict[key] = self._resize_pos_embed(pos, (side, side),
                                                             self.patch_resolution)

    def _resize_pos_embed(self, pos: torch.Tensor, src: Tuple[int, int],
                          dst: Tuple[int, int]) -> torch.Tensor:
        """``(1, src_h*src_w, C)`` -> ``(1, dst_h*dst_w, C)`` by ``interpolate_mode``."""
        if tuple(src) == tuple(dst):
            return pos
        grid = pos.reshape(1, src[0], src[1], -1).permute(0, 3, 1, 2).float()
        kwargs = {} if self.interpolate_mode == 'nearest' else dict(align_corners=False)
        grid = F.interpolate(grid, size=dst, mode=self.interpolate_mode, **kwargs)
        return grid.flatten(2).transpose(1, 2).to(pos.dtype)

    # ----- forward -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor):
        """``(N, in_channels, H, W)`` -> tuple of ``(N, C_i, H_i, W_i)`` (contiguous)."""
        self.check_input(x)
        x = self.patch_embed(x)  # N, H, W, C
        if self.use_abs_pos_embed:
            n, h, w, c = x.shape
            pos = self._resize_pos_embed(self.absolute_pos_embed, self.patch_resolution, (h, w))
            x = x + pos.view(1, h, w, c)
        x = self.drop_after_pos(x)
        outs = [None] * len(self.out_indices)
        for i, stage in enumerate(self.stages):
            x = stage.forward_blocks(x)
            if stage.downsample is not None and self.out_after_downsample:
                x = stage.downsample(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs[self.out_indices.index(i)] = out.permute(0, 3, 1, 2).contiguous()
            if stage.downsample is not None and not self.out_after_downsample:
                x = stage.downsample(x)
        return tuple(outs)
