"""The constructor signatures of the host classes the twins stand in for, recorded from
mmdet 3.3.0 and mmseg 1.2.2 (``inspect.signature``), so the main tier checks the twins
without the hosts; tests/downstream/test_host_twins.py checks this table against the real classes.

Each entry: ``(name, kind, default)``; ``REQUIRED`` marks an argument without a default.
Every argument is ``POSITIONAL_OR_KEYWORD`` but ``**kwargs``; the argument lists the hosts share
(the ResNet, Swin and HRNet families) are written once and edited per class below."""
REQUIRED = '<required>'
_PK = 'POSITIONAL_OR_KEYWORD'
_KWARGS = [('kwargs', 'VAR_KEYWORD', REQUIRED)]


def _args(**defaults):
    """``[(name, 'POSITIONAL_OR_KEYWORD', default)]`` in the order given."""
    return [(name, _PK, default) for name, default in defaults.items()]


def _edit(base, *, drop=(), rename=None, after=None, **values):
    """``base`` with the names in ``drop`` left out, ``rename`` applied (old -> new), the
    defaults in ``values`` replaced and ``after``'s ``{name: [entries]}`` inserted after name."""
    rename, after = rename or {}, after or {}
    out = []
    for name, kind, default in base:
        if name in drop:
            continue
        name = rename.get(name, name)
        out.append((name, kind, values.get(name, default)))
        out.extend(after.get(name, []))
    return out


_BN = {'type': 'BN', 'requires_grad': True}
_RESNET = _args(
    depth=REQUIRED, in_channels=3, stem_channels=None, base_channels=64, num_stages=4,
    strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1), out_indices=(0, 1, 2, 3), style='pytorch',
    deep_stem=False, avg_down=False, frozen_stages=-1, conv_cfg=None, norm_cfg=_BN,
    norm_eval=True, dcn=None, stage_with_dcn=(False, False, False, False), plugins=None,
    with_cp=False, zero_init_residual=True, pretrained=None, init_cfg=None)
_RESNEXT = _args(groups=1, base_width=4) + _KWARGS
_SWIN = _args(
    pretrain_img_size=224, in_channels=3, embed_dims=96, patch_size=4, window_size=7,
    mlp_ratio=4, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), strides=(4, 2, 2, 2),
    out_indices=(0, 1, 2, 3), qkv_bias=True, qk_scale=None, patch_norm=True, drop_rate=0.0,
    attn_drop_rate=0.0, drop_path_rate=0.1, use_abs_pos_embed=False, act_cfg={'type': 'GELU'},
    norm_cfg={'type': 'LN'}, with_cp=False, pretrained=None, frozen_stages=-1, init_cfg=None)
_HRNET = _args(
    extra=REQUIRED, in_channels=3, conv_cfg=None, norm_cfg={'type': 'BN'}, norm_eval=True,
    with_cp=False, zero_init_residual=False, multiscale_output=True, pretrained=None,
    init_cfg=None)

HOST_SIGNATURES = {
    ('mmdet', 'ResNet'): _RESNET,
    ('mmdet', 'ResNetV1d'): _KWARGS,
    ('mmdet', 'ResNeXt'): _RESNEXT,
    ('mmdet', 'RegNet'): _edit(_RESNET, drop=('num_stages',), rename={'depth': 'arch'},
                               stem_channels=32, base_channels=32, strides=(2, 2, 2, 2)),
    ('mmdet', 'SwinTransformer'): _edit(_SWIN, after={'pretrained': _args(
        convert_weights=False)}),
    ('mmseg', 'ResNet'): _edit(_RESNET, stem_channels=64, norm_eval=False, after={
        'plugins': _args(multi_grid=None, contract_dilation=False)}),
    ('mmseg', 'ResNetV1c'): _KWARGS,
    ('mmseg', 'ResNetV1d'): _KWARGS,
    ('mmseg', 'ResNeXt'): _RESNEXT,
    ('mmseg', 'SwinTransformer'): _SWIN,
    ('mmseg', 'VisionTransformer'): _args(
        img_size=224, patch_size=16, patch_pad='corner', in_channels=3, embed_dims=768,
        num_layers=12, num_heads=12, mlp_ratio=4, out_origin=False, out_indices=-1,
        qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0,
        with_cls_token=True, output_cls_token=False, norm_cfg={'type': 'LN'},
        act_cfg={'type': 'GELU'}, patch_norm=False, patch_bias=False, pre_norm=False,
        final_norm=False, interpolate_mode='bicubic', num_fcs=2, norm_eval=False,
        with_cp=False, frozen_exclude=['all'], pretrained=None, init_cfg=None),
    ('mmdet', 'HRNet'): _HRNET,
    ('mmseg', 'HRNet'): _edit(_HRNET, norm_cfg=_BN, norm_eval=False, after={
        'with_cp': _args(frozen_stages=-1)}),
    ('mmdet', 'PyramidVisionTransformer'): _args(
        pretrain_img_size=224, in_channels=3, embed_dims=64, num_stages=4,
        num_layers=[3, 4, 6, 3], num_heads=[1, 2, 5, 8], patch_sizes=[4, 2, 2, 2],
        strides=[4, 2, 2, 2], paddings=[0, 0, 0, 0], sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3), mlp_ratios=[8, 8, 4, 4], qkv_bias=True, drop_rate=0.0,
        attn_drop_rate=0.0, drop_path_rate=0.1, use_abs_pos_embed=True, norm_after_stage=False,
        use_conv_ffn=False, act_cfg={'type': 'GELU'}, norm_cfg={'type': 'LN', 'eps': 1e-6},
        pretrained=None, convert_weights=True, init_cfg=None),
    ('mmdet', 'PyramidVisionTransformerV2'): _KWARGS,
    ('mmseg', 'PCPVT'): _args(
        in_channels=3, embed_dims=[64, 128, 256, 512], patch_sizes=[4, 2, 2, 2],
        strides=[4, 2, 2, 2], num_heads=[1, 2, 4, 8], mlp_ratios=[4, 4, 4, 4],
        out_indices=(0, 1, 2, 3), qkv_bias=False, drop_rate=0.0, attn_drop_rate=0.0,
        drop_path_rate=0.0, norm_cfg={'type': 'LN'}, depths=[3, 4, 6, 3],
        sr_ratios=[8, 4, 2, 1], norm_after_stage=False, pretrained=None, init_cfg=None),
    ('mmseg', 'SVT'): _args(
        in_channels=3, embed_dims=[64, 128, 256], patch_sizes=[4, 2, 2, 2],
        strides=[4, 2, 2, 2], num_heads=[1, 2, 4], mlp_ratios=[4, 4, 4],
        out_indices=(0, 1, 2, 3), qkv_bias=False, drop_rate=0.0, attn_drop_rate=0.0,
        drop_path_rate=0.2, norm_cfg={'type': 'LN'}, depths=[4, 4, 4], sr_ratios=[4, 2, 1],
        windiow_sizes=[7, 7, 7], norm_after_stage=True, pretrained=None, init_cfg=None),
}
