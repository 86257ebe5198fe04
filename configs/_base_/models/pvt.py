# PVT v1 (mmdet 3.3's PyramidVisionTransformer, its keys and weights): 64/128/320/512 channels
# at strides 4..32, PVT-Small's depths. Derived configs set `arch` (t, s, m, l) or switch to
# PyramidVisionTransformerV2 (b0..b5).
model = dict(
    backbone=dict(
        type='PyramidVisionTransformer',
        arch='s',
        pretrain_img_size=224,
        in_channels=3,
        num_heads=[1, 2, 5, 8],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        frozen_stages=-1))
