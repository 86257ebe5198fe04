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
_BEIT = _args(
    img_size=224, patch_size=16, in_channels=3, embed_dims=768, num_layers=12, num_heads=12,
    mlp_ratio=4, out_indices=-1, qv_bias=True, attn_drop_rate=0.0, drop_path_rate=0.0,
    norm_cfg={'type': 'LN'}, act_cfg={'type': 'GELU'}, patch_norm=False, final_norm=False,
    num_fcs=2, norm_eval=False, pretrained=None, init_values=0.1, init_cfg=None)

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
    ('mmseg', 'BEiT'): _BEIT,
    ('mmseg', 'MAE'): _edit(_BEIT, drop=('qv_bias',)),
    ('mmseg', 'MSCAN'): _args(
        in_channels=3, embed_dims=[64, 128, 256, 512], mlp_ratios=[4, 4, 4, 4], drop_rate=0.0,
        drop_path_rate=0.0, depths=[3, 4, 6, 3], num_stages=4,
        attention_kernel_sizes=[5, [1, 7], [1, 11], [1, 21]],
        attention_kernel_paddings=[2, [0, 3], [0, 5], [0, 10]], act_cfg={'type': 'GELU'},
        norm_cfg={'type': 'SyncBN', 'requires_grad': True}, pretrained=None, init_cfg=None),
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

# mmdet's and mmseg's ResNeSt, mmdet's Res2Net
_RESNEST = _args(groups=1, base_width=4, radix=2, reduction_factor=4, avg_down_stride=True) + \
    _KWARGS
HOST_SIGNATURES[('mmdet', 'ResNeSt')] = _RESNEST
HOST_SIGNATURES[('mmseg', 'ResNeSt')] = _RESNEST
HOST_SIGNATURES[('mmdet', 'Res2Net')] = _args(
    scales=4, base_width=26, style='pytorch', deep_stem=True, avg_down=True, pretrained=None,
    init_cfg=None) + _KWARGS

# mmdet 3.3's YOLO-lineage backbones (CSPDarknet of YOLOX, CSPNeXt of RTMDet, Darknet of YOLOv3)
_YOLO_BN = {'type': 'BN', 'momentum': 0.03, 'eps': 0.001}
_YOLO_INIT = {'type': 'Kaiming', 'layer': 'Conv2d', 'a': 5 ** 0.5, 'distribution': 'uniform',
              'mode': 'fan_in', 'nonlinearity': 'leaky_relu'}
HOST_SIGNATURES.update({
    ('mmdet', 'CSPDarknet'): _args(
        arch='P5', deepen_factor=1.0, widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1,
        use_depthwise=False, arch_ovewrite=None, spp_kernal_sizes=(5, 9, 13), conv_cfg=None,
        norm_cfg=_YOLO_BN, act_cfg={'type': 'Swish'}, norm_eval=False, init_cfg=_YOLO_INIT),
    ('mmdet', 'CSPNeXt'): _args(
        arch='P5', deepen_factor=1.0, widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1,
        use_depthwise=False, expand_ratio=0.5, arch_ovewrite=None, spp_kernel_sizes=(5, 9, 13),
        channel_attention=True, conv_cfg=None, norm_cfg=_YOLO_BN, act_cfg={'type': 'SiLU'},
        norm_eval=False, init_cfg=_YOLO_INIT),
    ('mmdet', 'Darknet'): _args(
        depth=53, out_indices=(3, 4, 5), frozen_stages=-1, conv_cfg=None, norm_cfg=_BN,
        act_cfg={'type': 'LeakyReLU', 'negative_slope': 0.1}, norm_eval=True, pretrained=None,
        init_cfg=None),
})

# mmdet's and mmseg's MobileNetV2/V3 and mmdet's EfficientNet
_MOBILENET_V2 = _args(
    widen_factor=1.0, out_indices=(1, 2, 4, 7), frozen_stages=-1, conv_cfg=None,
    norm_cfg={'type': 'BN'}, act_cfg={'type': 'ReLU6'}, norm_eval=False, with_cp=False,
    pretrained=None, init_cfg=None)
HOST_SIGNATURES.update({
    ('mmdet', 'MobileNetV2'): _MOBILENET_V2,
    ('mmseg', 'MobileNetV2'): _edit(_MOBILENET_V2, out_indices=(1, 2, 4, 6), after={
        'widen_factor': _args(strides=(1, 2, 2, 2, 1, 2, 1), dilations=(1, 1, 1, 1, 1, 1, 1))}),
    ('mmseg', 'MobileNetV3'): _args(
        arch='small', conv_cfg=None, norm_cfg={'type': 'BN'}, out_indices=(0, 1, 12),
        frozen_stages=-1, reduction_factor=1, norm_eval=False, with_cp=False, pretrained=None,
        init_cfg=None),
    ('mmdet', 'EfficientNet'): _args(
        arch='b0', drop_path_rate=0.0, out_indices=(6, ), frozen_stages=0,
        conv_cfg={'type': 'Conv2dAdaptivePadding'}, norm_cfg={'type': 'BN', 'eps': 0.001},
        act_cfg={'type': 'Swish'}, norm_eval=False, with_cp=False, init_cfg=[
            {'type': 'Kaiming', 'layer': 'Conv2d'},
            {'type': 'Constant', 'layer': ['_BatchNorm', 'GroupNorm'], 'val': 1}]),
})

# mmseg's STDC (STDCNet requires its first six arguments)
HOST_SIGNATURES.update({
    ('mmseg', 'STDCNet'): _args(
        stdc_type=REQUIRED, in_channels=REQUIRED, channels=REQUIRED, bottleneck_type=REQUIRED,
        norm_cfg=REQUIRED, act_cfg=REQUIRED, num_convs=4, with_final_conv=False,
        pretrained=None, init_cfg=None),
    ('mmseg', 'STDCContextPathNet'): _args(
        backbone_cfg=REQUIRED, last_in_channels=(1024, 512), out_channels=128,
        ffm_cfg={'in_channels': 512, 'out_channels': 256, 'scale_factor': 4},
        upsample_mode='nearest', align_corners=None, norm_cfg={'type': 'BN'}, init_cfg=None),
})
# mmdet's DetectoRS_ResNet and TridentResNet (their kwargs are mmdet's ResNet's)
HOST_SIGNATURES[('mmdet', 'DetectoRS_ResNet')] = _args(
    sac=None, stage_with_sac=(False, False, False, False), rfp_inplanes=None, output_img=False,
    pretrained=None, init_cfg=None) + _KWARGS
HOST_SIGNATURES[('mmdet', 'TridentResNet')] = _args(
    depth=REQUIRED, num_branch=REQUIRED, test_branch_idx=REQUIRED,
    trident_dilations=REQUIRED) + _KWARGS
# mmdet 3.3's SSD VGG and CornerNet/CentripetalNet Hourglass
HOST_SIGNATURES.update({
    ('mmdet', 'SSDVGG'): _args(
        depth=REQUIRED, with_last_pool=False, ceil_mode=True, out_indices=(3, 4),
        out_feature_indices=(22, 34), pretrained=None, init_cfg=None, input_size=None,
        l2_norm_scale=None),
    ('mmdet', 'HourglassNet'): _args(
        downsample_times=5, num_stacks=2, stage_channels=(256, 256, 384, 384, 384, 512),
        stage_blocks=(2, 2, 2, 2, 2, 4), feat_channel=256, norm_cfg=_BN, init_cfg=None),
})
