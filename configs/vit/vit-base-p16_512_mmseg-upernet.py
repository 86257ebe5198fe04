# ViT-B/16 as mmseg's UPerNet backbone (mmseg 1.2.2 vit_vit-b16_mln_upernet_8xb2-80k_ade20k-
# 512x512): mmseg's own spelling through the twin (mmseg's defaults: no final norm, no patch
# projection bias), four (B, 768, H/16, W/16) maps from layers 3, 6, 9, 12 for mmseg's
# MultiLevelNeck. The whole-model checkpoints of those segmentors load into it.
model = dict(
    backbone=dict(
        type='mmbackbones.mmseg.VisionTransformer',
        img_size=(512, 512),
        patch_size=16,
        in_channels=3,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4,
        out_indices=(2, 5, 8, 11),
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        with_cls_token=True,
        norm_cfg=dict(type='LN', eps=1e-6),
        act_cfg=dict(type='GELU'),
        norm_eval=False,
        interpolate_mode='bicubic'))
