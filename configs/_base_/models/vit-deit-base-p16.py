# DeiT-Base: 768-d, 12 layers, 12 heads (mmpretrain arch 'deit-base').
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='deit-base',
        img_size=224,
        patch_size=16,
        out_indices=-1,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=True,
        out_type='cls_token'))
