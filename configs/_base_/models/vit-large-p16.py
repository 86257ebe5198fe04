# ViT-L/16 (mmpretrain arch 'large': 1024-d, 24 layers, 16 heads).
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='large',
        img_size=224,
        patch_size=16,
        out_indices=-1,
        drop_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=True,
        out_type='cls_token'))
