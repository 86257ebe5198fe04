# PoolFormer-S12 (mmpretrain arch 's12') as a dense backbone: the four stages (network positions
# 0, 2, 4, 6), each through its own GroupNorm, strides 4-32, as mmseg's fpn_poolformer_s12.
# frozen_stages=-1 trains the stem too (mmpretrain's default 0 freezes patch_embed).
model = dict(
    backbone=dict(
        type='PoolFormer',
        arch='s12',
        in_channels=3,
        out_indices=(0, 2, 4, 6),
        drop_path_rate=0.1,
        frozen_stages=-1))
