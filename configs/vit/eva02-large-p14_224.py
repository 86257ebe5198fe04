# EVA-02 Large/14 (timm eva02_large_patch14_224, the official weights): SwiGLU MLP with sub-LN,
# 2-D rotary position embedding; mean of the patch tokens, as timm's avg pooling.
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='eva02-large',
        img_size=224,
        patch_size=14,
        final_norm=False,
        out_type='avg_featmap'))
