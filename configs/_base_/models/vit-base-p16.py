# ViT-B/16 (mmpretrain arch 'base': 768-d, 12 layers, 12 heads): class-token output, final LN.
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        out_indices=-1,
        drop_rate=0.1,
        drop_path_rate=0.,
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=True,
        out_type='cls_token',
        with_cls_token=True,
        interpolate_mode='bicubic'))
