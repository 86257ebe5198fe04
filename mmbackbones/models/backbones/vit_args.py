"""The argument side of :mod:`.vit`: mmpretrain's arch table, the rows that make an arch what it
is (DINOv2's layer scale, EVA-02's rotary embedding and SwiGLU), and mmseg's spelling."""
from typing import Dict

from ...utils.validation import (MAX_BLOCKS, MAX_WIDTH, InvalidChoiceError, check_bool,
                                 check_cfg_keys, check_choice, check_positive_int,
                                 check_size_limit)
from ..layers.pos_embed import check_pair
from ..layers.rel_pos import RESIZE_MODES
from ..layers.rope import ROPE_LAYOUTS


def _arch(embed_dims, num_layers, num_heads, feedforward_channels):
    return dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=num_heads,
                feedforward_channels=feedforward_channels)


# Names and dimensions are mmpretrain 1.2.0's, so an mmpretrain config means the same model here
# (beware: mmpretrain's 'small' is 768-d x 8 layers; the 384-d ViT-S of timm/DeiT is
# 'deit-small'). The dinov2 base/large entries are added: same layout as 'base'/'large'.
arch_settings: Dict[str, dict] = {
    **dict.fromkeys(['s', 'small'], _arch(768, 8, 8, 768 * 3)),
    **dict.fromkeys(['b', 'base'], _arch(768, 12, 12, 3072)),
    **dict.fromkeys(['l', 'large'], _arch(1024, 24, 16, 4096)),
    **dict.fromkeys(['h', 'huge'], _arch(1280, 32, 16, 5120)),
    **dict.fromkeys(['eva-g', 'eva-giant'], _arch(1408, 40, 16, 6144)),
    **dict.fromkeys(['deit-t', 'deit-tiny'], _arch(192, 12, 3, 192 * 4)),
    **dict.fromkeys(['deit-s', 'deit-small', 'dinov2-s', 'dinov2-small'],
                    _arch(384, 12, 6, 384 * 4)),
    **dict.fromkeys(['deit-b', 'deit-base'], _arch(768, 12, 12, 768 * 4)),
    **dict.fromkeys(['dinov2-b', 'dinov2-base'], _arch(768, 12, 12, 3072)),
    **dict.fromkeys(['dinov2-l', 'dinov2-large'], _arch(1024, 24, 16, 4096)),
    # dinov2-g uses the fused SwiGLU FFN (ARCH_EXTRAS)
    **dict.fromkeys(['dinov2-g', 'dinov2-giant'], _arch(1536, 40, 24, 6144)),
}


def _eva02(embed_dims, num_layers, num_heads):
    return _arch(embed_dims, num_layers, num_heads, int(embed_dims * 4 * 2 / 3))


# EVA-02 (timm's eva02_*_patch14, EVA-02's official weights): SwiGLU with hidden width
# embed_dims * 8 / 3, rotary position embedding; base and large add the sub-LN
arch_settings.update({
    **dict.fromkeys(['eva02-t', 'eva02-tiny'], _eva02(192, 12, 3)),
    **dict.fromkeys(['eva02-s', 'eva02-small'], _eva02(384, 12, 6)),
    **dict.fromkeys(['eva02-b', 'eva02-base'], _eva02(768, 12, 12)),
    **dict.fromkeys(['eva02-l', 'eva02-large'], _eva02(1024, 24, 16)),
})

_DINOV2 = dict(patch_size=14, img_size=518, layer_scale_init_value=1e-5)
_EVA02 = dict(patch_size=14, img_size=224, ffn_type='swiglu', rope=True)
# What an arch is beyond its widths: an argument left at its signature default (patch_size=16,
# img_size=224, layer_scale_init_value=0.) takes the arch's value here; ffn_type/sub_ln/rope
# are the default of every layer (layer_cfgs still override them).
ARCH_EXTRAS: Dict[str, dict] = {
    **dict.fromkeys(['dinov2-s', 'dinov2-small', 'dinov2-b', 'dinov2-base', 'dinov2-l',
                     'dinov2-large'], _DINOV2),
    **dict.fromkeys(['dinov2-g', 'dinov2-giant'], dict(_DINOV2, ffn_type='swiglu_fused')),
    **dict.fromkeys(['eva02-t', 'eva02-tiny', 'eva02-s', 'eva02-small'], _EVA02),
    **dict.fromkeys(['eva02-b', 'eva02-base', 'eva02-l', 'eva02-large'],
                    dict(_EVA02, sub_ln=True)),
}


def arch_extras(arch) -> dict:
    """The :data:`ARCH_EXTRAS` row of an arch name (``{}`` for a dict or another name)."""
    return dict(ARCH_EXTRAS.get(arch.lower(), {})) if isinstance(arch, str) else {}


ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')
OUT_TYPES = ('raw', 'cls_token', 'featmap', 'avg_featmap')
PATCH_CFG_KEYS = ('bias', 'norm_cfg', 'conv_cfg', 'padding')


def resolve_arch(arch) -> dict:
    """``arch`` name or dict -> ``dict(embed_dims, num_layers, num_heads, feedforward_channels)``.
    """
    if isinstance(arch, str):
        key = arch.lower()
        if key not in arch_settings:
            raise InvalidChoiceError(
                f'arch {arch!r} is not a known VisionTransformer arch; known archs: '
                f'{", ".join(sorted(arch_settings))} (or a dict with keys {list(ARCH_KEYS)})')
        return dict(arch_settings[key])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict with keys {list(ARCH_KEYS)}, got '
                        f'{arch!r} ({type(arch).__name__})')
    missing = [k for k in ARCH_KEYS if k not in arch]
    unknown = sorted(set(arch) - set(ARCH_KEYS), key=str)
    if missing or unknown:
        raise ValueError(f'arch dict: missing keys {missing}, unknown keys {unknown}; it needs '
                         f'exactly {list(ARCH_KEYS)}, got {arch!r}')
    settings = dict(arch)
    for key in ARCH_KEYS:
        limit = MAX_BLOCKS if key == 'num_layers' else MAX_WIDTH
        check_size_limit(f'arch[{key!r}]', settings[key], limit)
    if settings['embed_dims'] % settings['num_heads']:
        raise ValueError(f"arch embed_dims ({settings['embed_dims']}) must be divisible by "
                         f"num_heads ({settings['num_heads']})")
    return settings


# mmseg's VisionTransformer arguments that mmpretrain's has not (the twin's and the legacy path's)
MMSEG_ONLY = ('embed_dims', 'num_layers', 'num_heads', 'mlp_ratio', 'attn_drop_rate', 'act_cfg',
              'patch_pad', 'patch_bias', 'patch_norm', 'num_fcs', 'pretrained')


def _merge_cfg(name: str, cfg, extra: dict):
    """``cfg`` (a dict, or a list of dicts for ``layer_cfgs``) with ``extra``'s keys added; a key
    in both with another value is a ``ValueError`` (the setting was given twice)."""
    if isinstance(cfg, (list, tuple)):
        return [_merge_cfg(f'{name}[{i}]', c, extra) for i, c in enumerate(cfg)]
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        return cfg  # refused with its own message by the checks that follow
    for key, value in extra.items():
        if key in cfg and cfg[key] != value:
            raise ValueError(f'{name}[{key!r}]={cfg[key]!r} contradicts the mmseg argument '
                             f'giving {value!r}; give it once')
    return {**extra, **cfg}


def mmseg_spelling(args: dict, host: dict) -> dict:
    """The core's arguments ``args`` with mmseg's own arguments ``host`` (names in
    :data:`MMSEG_ONLY` but ``pretrained``) translated in, each with mmseg's meaning and nothing
    else changed: ``embed_dims``/``num_layers``/``num_heads`` replace the arch's values and
    ``feedforward_channels = mlp_ratio * embed_dims`` (``mlp_ratio`` not given: the arch's
    ratio); ``attn_drop_rate``/``act_cfg`` go to every layer (``layer_cfgs``);
    ``patch_pad``/``patch_bias``/``patch_norm`` (a ``norm_cfg`` norm) to ``patch_cfg``;
    ``num_fcs`` must be 2. Used by the mmseg twin (all of them) and by the core (those given).
    """
    args = dict(args)
    arch_args = {k: host[k] for k in ('embed_dims', 'num_layers', 'num_heads') if k in host}
    if arch_args or 'mlp_ratio' in host:
        base = resolve_arch(args.get('arch', 'base'))
        ratio = host.get('mlp_ratio', base['feedforward_channels'] / base['embed_dims'])
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            raise ValueError(f'mlp_ratio must be a positive number, got {ratio!r}')
        for key, value in arch_args.items():
            check_positive_int(key, value)
        arch = {**base, **arch_args}
        arch['feedforward_channels'] = int(ratio * arch['embed_dims'])
        args['arch'] = resolve_arch(arch)
    layer = {k: host[k] for k in ('attn_drop_rate', 'act_cfg') if k in host}
    if layer:
        args['layer_cfgs'] = _merge_cfg('layer_cfgs', args.get('layer_cfgs'), layer)
    patch = {}
    if 'patch_pad' in host:
        patch['padding'] = check_choice('patch_pad', host['patch_pad'], ('corner', 'same'))
    if 'patch_bias' in host:
        patch['bias'] = check_bool('patch_bias', host['patch_bias'])
    if 'patch_norm' in host:
        patch['norm_cfg'] = args.get('norm_cfg', dict(type='LN', eps=1e-6)) if check_bool(
            'patch_norm', host['patch_norm']) else None
    if patch:
        args['patch_cfg'] = _merge_cfg('patch_cfg', args.get('patch_cfg'), patch)
    if host.get('num_fcs', 2) != 2:
        raise ValueError(f"num_fcs must be 2 (Linear-act-Linear), got {host['num_fcs']!r}")
    return args


def check_modern_args(num_layers, num_extra_tokens, img_grid, num_register_tokens,
                      interpolate_antialias, rope, window_size, window_block_indexes,
                      use_rel_pos, rel_pos_zero_init, rel_pos_size,
                      residual_block_indexes=(), rel_pos_resize='linear') -> dict:
    """The DINOv2 / EVA-02 / ViTDet arguments of :class:`~.vit.VisionTransformer`, checked ->
    the attributes they set."""
    out = {}
    out['num_register_tokens'] = check_size_limit(
        'num_register_tokens', num_register_tokens, 256, 'register tokens') \
        if num_register_tokens else 0
    out['num_prefix_tokens'] = num_extra_tokens + out['num_register_tokens']
    out['interpolate_antialias'] = check_bool('interpolate_antialias', interpolate_antialias)
    if rope is True:
        rope = {}
    if rope is not False and rope is not None:
        rope = check_cfg_keys('rope', rope, ('layout', 'ref_grid', 'theta', 'interpolate'))
        layout = check_choice('rope layout', rope.get('layout', 'interleaved'), ROPE_LAYOUTS)
        ref = rope.get('ref_grid', 'default')
        if ref == 'default':
            ref = None if layout == 'tiled' else img_grid
        rope = dict(layout=layout, ref_grid=None if ref is None else check_pair(
            'rope ref_grid', ref), theta=float(rope.get('theta', 10000.)),
                    interpolate=check_bool('rope interpolate', rope.get('interpolate', True)))
    else:
        rope = None
    out['rope_cfg'] = rope
    out['window_size'] = check_positive_int('window_size', window_size) if window_size else 0
    if isinstance(window_block_indexes, int) or not isinstance(
            window_block_indexes, (list, tuple, range)) or not all(
                isinstance(i, int) and 0 <= i < num_layers for i in window_block_indexes):
        raise ValueError(f'window_block_indexes must be a list of block indices in [0, '
                         f'{num_layers}), got {window_block_indexes!r}')
    out['window_block_indexes'] = tuple(window_block_indexes) if out['window_size'] else ()
    if window_block_indexes and not out['window_size']:
        raise ValueError(f'window_block_indexes={window_block_indexes!r} needs '
                         f'window_size > 0')
    out['residual_block_indexes'] = _check_indices('residual_block_indexes',
                                                   residual_block_indexes, num_layers)
    out['use_rel_pos'] = check_bool('use_rel_pos', use_rel_pos)
    out['rel_pos_resize'] = check_choice('rel_pos_resize', rel_pos_resize, RESIZE_MODES)
    out['rel_pos_zero_init'] = check_bool('rel_pos_zero_init', rel_pos_zero_init)
    out['rel_pos_size'] = (check_pair('rel_pos_size', rel_pos_size)
                           if rel_pos_size is not None else img_grid)
    if (out['window_block_indexes'] or out['use_rel_pos'] or out['residual_block_indexes']) \
            and out['num_prefix_tokens']:
        raise ValueError('window attention (window_block_indexes), relative positions '
                         '(use_rel_pos) and residual conv blocks (residual_block_indexes) of '
                         'ViTDet work on the token map only: pass with_cls_token=False and '
                         'num_register_tokens=0')
    return out


def _check_indices(name: str, indices, num_layers: int) -> tuple:
    if isinstance(indices, int) or not isinstance(indices, (list, tuple, range)) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < num_layers
            for i in indices):
        raise ValueError(f'{name} must be a list of block indices in [0, {num_layers}), got '
                         f'{indices!r}')
    return tuple(indices)


def freeze_except(model, frozen_exclude) -> None:
    """mmseg's ``frozen_exclude``: freeze every parameter of ``model`` whose name contains none
    of the strings (``['all']`` or ``None``: nothing)."""
    if frozen_exclude is None:
        return
    if isinstance(frozen_exclude, str) or not isinstance(frozen_exclude, (list, tuple)) \
            or not all(isinstance(e, str) for e in frozen_exclude):
        raise TypeError(f'frozen_exclude must be a list of parameter-name substrings (or '
                        f'["all"]), got {frozen_exclude!r}')
    model.frozen_exclude = list(frozen_exclude)
    if 'all' in frozen_exclude:
        return
    for name, param in model.named_parameters():
        if not any(e in name for e in frozen_exclude):
            param.requires_grad = False
