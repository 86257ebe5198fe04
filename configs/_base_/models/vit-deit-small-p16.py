# DeiT-Small / ViT-S/16 of timm: 384-d, 12 layers, 6 heads. NB: mmpretrain's arch 'small' is a
# different model (768-d, 8 layers); the 384-d one is 'deit-small'.
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        out_indices=-1,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=True,
        out_type='cls_token'))
