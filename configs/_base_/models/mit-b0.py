# MiT-B0, SegFormer's smallest encoder (mmseg 1.2.2's MixVisionTransformer, its keys and
# weights): 32/64/160/256 channels at strides 4..32. Derived configs set `arch` (b0..b5).
model = dict(
    backbone=dict(
        type='MixVisionTransformer',
        arch='b0',
        in_channels=3,
        num_stages=4,
        patch_sizes=[7, 3, 3, 3],
        strides=[4, 2, 2, 2],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        frozen_stages=-1))
