# EVA-02 Tiny/14 (timm eva02_tiny_patch14_224, the official weights): SwiGLU MLP,
# 2-D rotary position embedding; mean of the patch tokens, as timm's avg pooling.
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='eva02-tiny',
        img_size=224,
        patch_size=14,
        final_norm=False,
        out_type='avg_featmap'))
