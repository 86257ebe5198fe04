"""Swin Transformer (`Hierarchical Vision Transformer using Shifted Windows
<https://arxiv.org/abs/2103.14030>`_).

Parameter names follow mmpretrain 1.2.0's ``SwinTransformer`` (``patch_embed.projection``,
``stages.{i}.blocks.{j}.attn.w_msa.*``, ``stages.{i}.blocks.{j}.ffn.layers.*``,
``stages.{i}.downsample.*``, ``norm{i}``), which are also mmdet 3.3's and mmseg 1.2's, so their
checkpoints load with ``prefix='backbone'``; timm and original (Microsoft) Swin checkpoints load
through :func:`mmbackbones.checkpoint.converters.timm_swin.convert_timm_swin` (automatically).

The class takes mmpretrain's signature, defaults and meanings (``mmcls.SwinTransformer``).
mmdet's and mmseg's spelling is the host twin ``mmbackbones.mmdet.SwinTransformer`` /
``mmbackbones.mmseg.SwinTransformer`` (``mmbackbones.compat.swin``), translated by
:func:`mmdet_spelling`; their own arguments given here still work, with one warning.

Any input size works: the image is padded to a multiple of the patch size, every attention layer
pads its map to a multiple of the window, and patch merging pads odd sides. Stage ``i``
(0-based) has ``embed_dims * 2 ** i`` channels and stride ``patch_size * 2 ** i``; an ``H x W``
input gives ``ceil(H / stride) x ceil(W / stride)`` maps. Internally maps are kept as
``(N, H, W, C)``. Sizes stay symbolic under tracing (``export --dynamic``).
"""
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from ...registry import MODELS
from ...utils.validation import (MAX_BLOCKS, MAX_IMAGE_SIDE, MAX_WIDTH, check_bool,
                                 check_cfg_keys, check_choice,
                                 check_positive_int, check_rate, check_size_limit,
                                 normalize_out_indices)
from ..base import BaseBackbone
from ..host_args import check_stage_count, take_host_args, to_contract_count
from ..layer_decay import strip_prefix
from ..layers.drop import DropPath
from ..layers.ffn import FFN
from ..layers.norm import build_norm, check_norm_cfg
from ..layers.patch_embed import PatchEmbed
from ..layers.pos_embed import INTERPOLATE_MODES, check_pair, is_tracing, resize_pos_embed
from ..layers.window_attention import ShiftWindowMSA, resize_relative_position_bias_table

_TINY = dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24])
_SMALL = dict(embed_dims=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24])
_BASE = dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])
_LARGE = dict(embed_dims=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48])
# mmpretrain's table, with its one-letter aliases.
arch_settings = {'t': _TINY, 'tiny': _TINY, 's': _SMALL, 'small': _SMALL,
            'b': _BASE, 'base': _BASE, 'l': _LARGE, 'large': _LARGE}
ARCH_KEYS = ('embed_dims', 'depths', 'num_heads')
# mmdet's/mmseg's arguments that mmpretrain's Swin has not -> the hosts that have them
MMDET_ONLY = {**dict.fromkeys(('embed_dims', 'depths', 'num_heads', 'mlp_ratio', 'qkv_bias',
                               'qk_scale', 'attn_drop_rate', 'patch_norm', 'pretrain_img_size',
                               'strides', 'act_cfg', 'pretrained'), ('mmdet', 'mmseg')),
              'convert_weights': ('mmdet', )}
STAGE_CFG_KEYS = ('block_cfgs', 'downsample_cfg')
BLOCK_CFG_KEYS = ('window_size', 'ffn_ratio', 'attn_cfgs', 'ffn_cfgs', 'norm_cfg')
ATTN_CFG_KEYS = ('qkv_bias', 'qk_scale', 'attn_drop', 'proj_drop')
FFN_CFG_KEYS = ('act_cfg', 'ffn_drop')
DOWNSAMPLE_CFG_KEYS = ('norm_cfg', )
PATCH_CFG_KEYS = ('norm_cfg', 'padding', 'bias')
NESTED = ('block_cfgs', 'attn_cfgs', 'ffn_cfgs', 'downsample_cfg')


def _per_item(name: str, cfgs, count: int) -> List[dict]:
    """A dict (the same for every item) or a list of ``count`` dicts -> list of dicts."""
    if cfgs is None:
        return [{} for _ in range(count)]
    if isinstance(cfgs, dict):
        return [dict(cfgs) for _ in range(count)]
    if not isinstance(cfgs, (list, tuple)) or len(cfgs) != count:
        raise ValueError(f'{name} must be a dict or a list of {count} dicts, got {cfgs!r}')
    return [dict(c) if isinstance(c, dict) else c for c in cfgs]


def parse_arch(arch) -> dict:
    """``arch`` name or dict -> ``dict(embed_dims, depths, num_heads)`` (validated)."""
    if isinstance(arch, str):
        check_choice('arch', arch.lower(), arch_settings)
        arch = arch_settings[arch.lower()]
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be one of {sorted(arch_settings)} or a dict with keys '
                        f'{list(ARCH_KEYS)}, got {arch!r}')
    if set(arch) != set(ARCH_KEYS):
        raise KeyError(f'arch dict must have exactly the keys {list(ARCH_KEYS)}, got '
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
    return dict(embed_dims=arch['embed_dims'], depths=list(depths), num_heads=list(heads))


def _merge(name: str, cfg, extra: dict):
    """``cfg`` (a dict or a list of dicts) with ``extra``'s keys added, the nested configs
    (:data:`NESTED`) merged key by key; a key given in both with another value is a
    ``ValueError``."""
    if isinstance(cfg, (list, tuple)):
        return [_merge(f'{name}[{i}]', c, extra) for i, c in enumerate(cfg)]
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        return cfg  # refused with its own message by the checks that follow
    out = dict(cfg)
    for key, value in extra.items():
        if key in NESTED:
            out[key] = _merge(f'{name}[{key!r}]', cfg.get(key), value)
        elif key in cfg and cfg[key] != value:
            raise ValueError(f'{name}[{key!r}]={cfg[key]!r} contradicts the mmdet/mmseg '
                             f'argument giving {value!r}; give it once')
        else:
            out[key] = value
    return out


def mmdet_spelling(args: dict, host: dict, num_stages: int) -> dict:
    """The core's arguments ``args`` with mmdet's/mmseg's own arguments ``host`` (names in
    :data:`MMDET_ONLY` but ``pretrained``/``convert_weights``) translated in, each with the
    host's meaning and nothing else changed: ``embed_dims``/``depths``/``num_heads`` replace the
    arch's values; ``pretrain_img_size`` is ``img_size``; ``strides`` must be
    ``(patch_size, 2, 2, ...)``; ``mlp_ratio``, ``qkv_bias``, ``qk_scale``, ``attn_drop_rate``
    and ``act_cfg`` go to every block, ``patch_norm=False`` removes the norms of the patch
    embedding and patch merging (``stage_cfgs``/``patch_cfg``). Used by the twins (all of them,
    plus the block/patch ``norm_cfg`` and the in-block ``drop_rate`` of mmdet) and by the core
    (those given).
    """
    args = dict(args)
    arch_args = {k: host[k] for k in ARCH_KEYS if k in host}
    if arch_args:
        args['arch'] = parse_arch({**parse_arch(args.get('arch', 'tiny')), **{
            k: list(v) if isinstance(v, (list, tuple)) else v for k, v in arch_args.items()}})
        num_stages = len(args['arch']['depths'])
    if 'pretrain_img_size' in host:
        args['img_size'] = host['pretrain_img_size']
    if 'strides' in host:
        patch_size = check_positive_int('patch_size', args.get('patch_size', 4))
        wanted = [patch_size] + [2] * (num_stages - 1)
        if not isinstance(host['strides'], (list, tuple)) or list(host['strides']) != wanted:
            raise ValueError(f"strides must be {tuple(wanted)} (patch embedding stride = "
                             f"patch_size, then 2x2 patch merging), got {host['strides']!r}")
    block = {}
    if 'mlp_ratio' in host:
        ratio = host['mlp_ratio']
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            raise ValueError(f'mlp_ratio must be a positive number, got {ratio!r}')
        block['ffn_ratio'] = ratio
    attn = {}
    if 'qkv_bias' in host:
        attn['qkv_bias'] = check_bool('qkv_bias', host['qkv_bias'])
    if host.get('qk_scale') is not None:
        qk_scale = host['qk_scale']
        if isinstance(qk_scale, bool) or not isinstance(qk_scale, (int, float)) or qk_scale <= 0:
            raise ValueError(f'qk_scale must be None (head_dims ** -0.5) or a positive number, '
                             f'got {qk_scale!r}')
        attn['qk_scale'] = float(qk_scale)
    if 'attn_drop_rate' in host:
        attn['attn_drop'] = check_rate('attn_drop_rate', host['attn_drop_rate'])
    ffn = {}
    if host.get('act_cfg') is not None:
        ffn['act_cfg'] = host['act_cfg']
    block.update({k: v for k, v in (('attn_cfgs', attn), ('ffn_cfgs', ffn)) if v})
    stage = dict(block_cfgs=block) if block else {}
    patch = {}
    if 'patch_norm' in host and not check_bool('patch_norm', host['patch_norm']):
        stage['downsample_cfg'] = dict(norm_cfg=None)
        patch['norm_cfg'] = None
    if stage:
        stage_cfgs = args.get('stage_cfgs')
        if isinstance(stage_cfgs, (list, tuple)):
            args['stage_cfgs'] = [_merge(f'stage_cfgs[{i}]', c, stage)
                                  for i, c in enumerate(stage_cfgs)]
        else:
            args['stage_cfgs'] = _merge('stage_cfgs', stage_cfgs, stage)
    if patch:
        args['patch_cfg'] = _merge('patch_cfg', args.get('patch_cfg'), patch)
    return args


def _block_cfgs(stage_cfg: dict, depth: int, defaults: dict, name: str) -> List[dict]:
    """One flat dict per block: the top-level ``defaults`` updated by mmpretrain's
    ``block_cfgs`` (``window_size``, ``ffn_ratio``, ``attn_cfgs``, ``ffn_cfgs``, ``norm_cfg``)."""
    out = []
    for j, cfg in enumerate(_per_item(f'{name}["block_cfgs"]',
                                      stage_cfg.get('block_cfgs'), depth)):
        cfg = check_cfg_keys(f'{name}["block_cfgs"][{j}]', cfg, BLOCK_CFG_KEYS)
        block = dict(defaults)
        attn = check_cfg_keys(f'{name} attn_cfgs', cfg.pop('attn_cfgs', {}), ATTN_CFG_KEYS)
        ffn = check_cfg_keys(f'{name} ffn_cfgs', cfg.pop('ffn_cfgs', {}), FFN_CFG_KEYS)
        block.update(cfg, **attn)
        if 'ffn_drop' in ffn:
            block['ffn_drop'] = check_rate('ffn_cfgs ffn_drop', ffn['ffn_drop'])
        if 'act_cfg' in ffn:
            block['act_cfg'] = ffn['act_cfg']
        check_positive_int(f'{name} window_size', block['window_size'])
        if 'norm_cfg' in cfg:
            check_norm_cfg(cfg['norm_cfg'], f'{name} norm_cfg')
        out.append(block)
    return out


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token: ``(N, H, W, C)`` -> ``(N, ceil(H/2), ceil(W/2), out)``.

    The ``4C`` features of a 2x2 patch are ordered channel-major (``c * 4 + dy * 2 + dx``), the
    order of mmcv's ``nn.Unfold``-based ``PatchMerging`` that mmpretrain/mmdet/mmseg
    checkpoints hold; odd sides are zero-padded at the bottom/right. ``norm_cfg=None`` (mmdet's
    ``patch_norm=False``) builds no norm.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 norm_cfg: Optional[dict] = dict(type='LN')):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm = build_norm(norm_cfg, 4 * in_channels)[1] if norm_cfg is not None else None
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        if is_tracing() or h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
            h, w = h + h % 2, w + w % 2
        # pixel_unshuffle of the channels-last view gives exactly this channel order, with a
        # channels-last kernel ~2x faster (forward + backward) than permute + reshape's copy,
        # whose innermost loop would run over the 2x2 offsets
        if x.numel():
            x = F.pixel_unshuffle(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
        else:  # pixel_unshuffle returns an empty input unchanged, of the wrong shape
            x = x.reshape(n, h // 2, w // 2, 4 * c)
        return self.reduction(x if self.norm is None else self.norm(x))


class SwinBlock(nn.Module):
    """``x + DropPath(W-MSA(LN(x)))`` then ``x + DropPath(FFN(LN(x)))`` on ``(N, H, W, C)``;
    odd blocks of a stage shift their windows by ``window_size // 2``."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7,
                 shift: bool = False, ffn_ratio: float = 4., drop_path: float = 0.,
                 pad_small_map: bool = False, with_cp: bool = False, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0., proj_drop: float = 0.,
                 ffn_drop: float = 0., act_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='LN')):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = build_norm(norm_cfg, embed_dims)[1]
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size,
                                   shift_size=window_size // 2 if shift else 0,
                                   pad_small_map=pad_small_map, qkv_bias=qkv_bias,
                                   qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=proj_drop)
        self.norm2 = build_norm(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, int(embed_dims * ffn_ratio), act_cfg=act_cfg,
                       drop_rate=ffn_drop)
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
    ``None`` for the last stage or when nothing after it is computed). ``block_cfgs``: one
    dict of :class:`SwinBlock` arguments per block."""

    def __init__(self, embed_dims: int, num_heads: int, block_cfgs: Sequence[dict],
                 downsample: bool, drop_paths: Sequence[float], with_cp: bool,
                 downsample_norm_cfg: Optional[dict] = dict(type='LN')):
        super().__init__()
        self.embed_dims = embed_dims
        self.blocks = nn.ModuleList([
            SwinBlock(embed_dims, num_heads, shift=j % 2 == 1, drop_path=drop_paths[j],
                      with_cp=with_cp, **cfg)
            for j, cfg in enumerate(block_cfgs)])
        self.downsample = (PatchMerging(embed_dims, 2 * embed_dims, downsample_norm_cfg)
                           if downsample else None)

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


@MODELS.register_module()
class SwinTransformer(BaseBackbone):
    """Swin Transformer backbone with mmpretrain's arguments, defaults and meanings.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` (or ``'t'``,
            ``'s'``, ``'b'``, ``'l'``), or ``dict(embed_dims=..., depths=[...], num_heads=[...])``.
        img_size (int | tuple): the usual input size; only sizes ``absolute_pos_embed`` (inputs
            of other sizes are accepted, the embedding is resized on the fly). Default 224.
        patch_size (int): patch embedding kernel and stride.
        in_channels (int): input image channels.
        window_size (int): attention window side. A checkpoint trained with another window size
            loads: its relative position bias tables are resized (bicubic) on load.
        drop_rate (float): dropout after the patch embedding.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
        out_indices (int | Sequence[int]): stages (0-based) to return, in this order. Only what
            they need is built.
        out_after_downsample (bool): return each stage after its patch merging: stage
            ``i < last`` then has ``2x`` channels and ``2x`` stride.
        use_abs_pos_embed (bool): add a learned absolute position embedding after the patch
            embedding.
        interpolate_mode (str): how ``absolute_pos_embed`` is resized.
        with_cp (bool): gradient checkpointing of each block.
        frozen_stages (int): mmpretrain's count: ``-1`` nothing, ``k`` the patch embedding and
            ``stages[0..k]`` (with their patch merging and output norms), ``k <= 3``. (mmdet's
            and mmseg's ``k`` freezes ``stages[0..k-1]``: their twins count that way.) The
            attribute ``frozen_stages`` reads the contract's count of the same modules,
            ``k + 1``.
        norm_eval (bool): keep BatchNorm layers in eval mode (Swin has none; kept for the
            contract).
        pad_small_map (bool): drop the shift where the smaller map side equals the window
            unless True (see :class:`~mmbackbones.models.layers.window_attention.ShiftWindowMSA`).
        norm_cfg (dict | None): the output norms ``norm{i}``; ``None`` returns raw stage maps.
        stage_cfgs (dict | list[dict]): per stage (a list) or for all: ``block_cfgs`` (a dict
            or one per block: ``window_size``, ``ffn_ratio``, ``attn_cfgs`` with ``qkv_bias``,
            ``qk_scale``, ``attn_drop``, ``proj_drop``; ``ffn_cfgs`` with ``act_cfg``,
            ``ffn_drop``; ``norm_cfg``) and ``downsample_cfg`` (``norm_cfg``).
        patch_cfg (dict): patch embedding overrides: ``norm_cfg``, ``padding``, ``bias``.
        init_cfg (dict | list[dict], optional): mmengine init config.

    mmdet's/mmseg's own arguments (:data:`MMDET_ONLY`) given here still work for now, each with
    its host meaning (:func:`mmdet_spelling`) and one
    :class:`~mmbackbones.models.host_args.HostArgumentWarning`; they change no other default.

    Outputs: a tuple of ``(N, C_i, H_i, W_i)`` maps in ``out_indices`` order, named
    ``stage{i + 1}``.
    """

    arch_zoo = arch_settings  # mmpretrain's attribute name
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
                 stage_cfgs: Union[dict, Sequence[dict]] = dict(),
                 patch_cfg: dict = dict(),
                 init_cfg=None,
                 **mmdet_args):
        take_host_args(self, mmdet_args, MMDET_ONLY)
        self.convert_weights = check_bool('convert_weights',
                                          mmdet_args.pop('convert_weights', False))
        if mmdet_args:
            arch, img_size, stage_cfgs, patch_cfg = (mmdet_spelling(dict(
                arch=arch, img_size=img_size, patch_size=patch_size, stage_cfgs=stage_cfgs,
                patch_cfg=patch_cfg), mmdet_args, len(parse_arch(arch)['depths']))[k]
                for k in ('arch', 'img_size', 'stage_cfgs', 'patch_cfg'))
            with warnings.catch_warnings():  # one warning (take_host_args') is enough
                warnings.simplefilter('ignore', UserWarning)
                init_cfg = self._pretrained_to_init_cfg(mmdet_args.get('pretrained'), init_cfg)
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = settings = parse_arch(arch)
        self.embed_dims = settings['embed_dims']
        self.depths, self.num_heads = settings['depths'], settings['num_heads']
        self.num_layers = len(self.depths)
        self.img_size = check_pair('img_size', img_size)
        for side in self.img_size:
            check_size_limit('img_size', side, MAX_IMAGE_SIDE, 'a side of absolute_pos_embed')
        self.patch_size = check_positive_int('patch_size', patch_size)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.window_size = check_size_limit('window_size', window_size, MAX_IMAGE_SIDE)
        for name, value in (('out_after_downsample', out_after_downsample),
                            ('use_abs_pos_embed', use_abs_pos_embed), ('with_cp', with_cp),
                            ('norm_eval', norm_eval)):
            check_bool(name, value)
        self.interpolate_mode = check_choice('interpolate_mode', interpolate_mode,
                                             INTERPOLATE_MODES)
        if norm_cfg is not None:
            check_norm_cfg(norm_cfg)
        self.num_stages = self.num_layers  # the contract's stage count (stages are not all built)
        self.out_indices = normalize_out_indices(out_indices, self.num_layers)
        # mmpretrain's k freezes the patch embedding and stages[0..k]: the contract's k + 1
        self.frozen_stages = to_contract_count(check_stage_count(frozen_stages, self.num_layers))
        self.norm_eval = norm_eval
        self.out_after_downsample = out_after_downsample
        self.use_abs_pos_embed = use_abs_pos_embed
        self.pad_small_map = check_bool('pad_small_map', pad_small_map)
        block_defaults = dict(
            window_size=self.window_size, pad_small_map=self.pad_small_map, ffn_ratio=4.,
            qkv_bias=True, qk_scale=None, attn_drop=0., proj_drop=0., ffn_drop=0., act_cfg=None,
            norm_cfg=dict(type='LN'))
        self._build_stem(patch_cfg, dict(type='LN'), check_rate('drop_rate', drop_rate))
        channels, strides_out = self._build_stages(
            stage_cfgs, block_defaults, dict(type='LN'), check_rate('drop_path_rate',
                                                                    drop_path_rate), with_cp)
        self.num_features = channels
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm(norm_cfg, channels[i])[1]
                            if norm_cfg is not None else nn.Identity())
        self._register_load_state_dict_pre_hook(self._prepare_checkpoint)
        self._set_outputs([channels[i] for i in self.out_indices],
                          [strides_out[i] for i in self.out_indices],
                          [f'stage{i + 1}' for i in self.out_indices])
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        return parse_arch(arch)

    def _build_stem(self, patch_cfg, patch_norm_cfg, drop_rate: float) -> None:
        """``patch_embed``, ``absolute_pos_embed`` (optional) and ``drop_after_pos``."""
        cfg = dict(norm_cfg=patch_norm_cfg)
        cfg.update(check_cfg_keys('patch_cfg', patch_cfg or {}, PATCH_CFG_KEYS))
        if cfg['norm_cfg'] is not None:
            check_norm_cfg(cfg['norm_cfg'], 'patch_cfg norm_cfg')
        self.patch_embed = PatchEmbed(self.in_channels, self.embed_dims, self.patch_size,
                                      input_size=self.img_size, **cfg)
        self.patch_resolution = self.patch_embed.init_out_size
        if self.use_abs_pos_embed:
            num_patches = self.patch_resolution[0] * self.patch_resolution[1]
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, num_patches, self.embed_dims))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=.02)
        self.drop_after_pos = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def _build_stages(self, stage_cfgs, block_defaults: dict, downsample_norm_cfg,
                      drop_path_rate: float, with_cp: bool) -> Tuple[List[int], List[int]]:
        """``stages`` up to the last requested one; returns channels and strides per stage."""
        last_built = max(self.out_indices)
        # Rates spread over all blocks of the full arch, so a truncated backbone keeps them.
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths), device='cpu').tolist()
        stage_cfgs = _per_item('stage_cfgs', stage_cfgs, self.num_layers)
        self.stages = nn.ModuleList()
        channels, strides, dims = [], [], self.embed_dims
        for i in range(last_built + 1):
            stage_cfg = check_cfg_keys(f'stage_cfgs[{i}]', stage_cfgs[i], STAGE_CFG_KEYS)
            down_cfg = check_cfg_keys(f'stage_cfgs[{i}]["downsample_cfg"]',
                                   stage_cfg.get('downsample_cfg', {}), DOWNSAMPLE_CFG_KEYS)
            # Patch merging after stage i feeds stage i + 1, or the output of stage i itself
            # with out_after_downsample; without either it would be unused, so not built.
            has_next = i < self.num_layers - 1
            downsample = has_next and (i < last_built or self.out_after_downsample)
            start = sum(self.depths[:i])
            self.stages.append(SwinBlockSequence(
                dims, self.num_heads[i],
                _block_cfgs(stage_cfg, self.depths[i], block_defaults, f'stage_cfgs[{i}]'),
                downsample, dpr[start:start + self.depths[i]], with_cp,
                down_cfg.get('norm_cfg', downsample_norm_cfg)))
            after = self.out_after_downsample and has_next
            channels.append(2 * dims if after else dims)
            strides.append(self.patch_size * 2 ** (i + 1 if after else i))
            dims *= 2 if has_next else 1
        return channels, strides

    # ----- freezing ------------------------------------------------------------------------
    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(depth, num_depths)`` for layer-wise lr decay, mmpretrain's Swin numbering: 0 the
        patch embedding, one depth per block, a stage's downsample with its last block, the
        last depth the final norms and a head."""
        num_depths = sum(self.depths) + 2
        name = strip_prefix(param_name, prefix)
        if name is None:
            return num_depths - 1, num_depths
        if name.startswith('patch_embed'):
            return 0, num_depths
        if name.startswith('stages.'):
            parts = name.split('.')
            stage = int(parts[1])
            if parts[3] in ('reduction', 'norm'):  # stages.i.downsample.*
                return sum(self.depths[:stage + 1]), num_depths
            return sum(self.depths[:stage]) + int(parts[3]) + 1, num_depths
        return num_depths - 1, num_depths

    def _stage_parts(self) -> List[List[nn.Module]]:
        """``stages[i]`` with its output norm (when built), per built stage."""
        return [[stage] + ([getattr(self, f'norm{i}')] if i in self.out_indices else [])
                for i, stage in enumerate(self.stages)]

    def stem_and_stages(self) -> List[Optional[nn.Module]]:
        return [self.patch_embed, *(nn.ModuleList(p) for p in self._stage_parts())]

    # ----- checkpoint loading --------------------------------------------------------------
    def _prepare_checkpoint(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Adapt an mmpretrain/mmcls/mmdet/mmseg checkpoint to this model before it is loaded.

        * ``norm.*`` (mmcls checkpoints before version 2) -> ``norm{last stage}.*``;
        * ``attn_mask`` buffers (before version 3) are dropped (masks are computed per size);
        * relative position bias tables of another window size are resized, and the matching
          ``relative_position_index`` is replaced by this model's;
        * ``absolute_pos_embed`` of another ``img_size`` is resized; mmdet's ``(1, C, H, W)``
          layout of it is read too.
        """
        last = self.num_layers - 1
        for key in [k for k in state_dict if k.startswith(prefix + 'norm.')]:
            new = prefix + f'norm{last}.' + key[len(prefix + 'norm.'):]
            if new not in state_dict:
                state_dict[new] = state_dict.pop(key)
        for key in [k for k in state_dict if k.startswith(prefix) and k.endswith('attn_mask')]:
            del state_dict[key]
        for name, param in self.named_parameters():
            if name.endswith('relative_position_bias_table'):
                self._prepare_bias_table(state_dict, prefix, name, param)
        key = prefix + 'absolute_pos_embed'
        if self.use_abs_pos_embed and key in state_dict:
            pos = state_dict[key]
            if pos.dim() == 4 and pos.shape[1] == self.embed_dims:  # (1, C, H, W)
                pos = pos.flatten(2).transpose(1, 2)
            if pos.dim() == 3 and pos.shape != self.absolute_pos_embed.shape:
                side = int(round(pos.shape[1] ** 0.5))
                if side * side == pos.shape[1]:
                    pos = resize_pos_embed(pos, (side, side), self.patch_resolution,
                                           self.interpolate_mode, num_extra_tokens=0)
            state_dict[key] = pos

    def _prepare_bias_table(self, state_dict, prefix: str, name: str, param) -> None:
        table = state_dict.get(prefix + name)
        if table is None:
            return
        index_name = name.replace('relative_position_bias_table', 'relative_position_index')
        if table.shape != param.shape:
            if table.dim() != 2 or table.shape[1] != param.shape[1]:
                return  # a real mismatch (heads): let load_state_dict report it
            window = self.get_submodule(name.rsplit('.', 1)[0]).window_size
            state_dict[prefix + name] = resize_relative_position_bias_table(table, window)
            state_dict.pop(prefix + index_name, None)
        # The index is derived from the window size, not learned: checkpoints without it
        # (timm's) or with another window's get this model's.
        state_dict.setdefault(prefix + index_name, self.get_buffer(index_name).clone())

    # ----- forward -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor):
        """``(N, in_channels, H, W)`` -> tuple of ``(N, C_i, H_i, W_i)`` (contiguous)."""
        self.check_input(x)
        x, (h, w) = self.patch_embed(x)
        x = x.view(x.shape[0], h, w, self.embed_dims)  # N, H, W, C
        if self.use_abs_pos_embed:
            pos = resize_pos_embed(self.absolute_pos_embed, self.patch_resolution, (h, w),
                                   self.interpolate_mode, num_extra_tokens=0)
            x = x + pos.view(1, h, w, self.embed_dims)
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
