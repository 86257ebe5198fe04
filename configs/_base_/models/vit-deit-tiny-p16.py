# DeiT-Tiny / ViT-Ti/16: 192-d, 12 layers, 3 heads (mmpretrain arch 'deit-tiny').
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='deit-tiny',
        img_size=224,
        patch_size=16,
        out_indices=-1,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=True,
        out_type='cls_token'))
