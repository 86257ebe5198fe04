# DINOv2 ViT-Large/14 (mmpretrain dinov2-large, timm vit_large_patch14_dinov2): layer scale 1e-5,
# patch 14 at 518 px; patch-token maps of the last layer for dense heads.
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='dinov2-large',
        img_size=518,
        patch_size=14,
        layer_scale_init_value=1e-5,
        out_indices=-1,
        out_type='featmap'))
