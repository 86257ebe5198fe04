# MobileNetV3-Small: the last block at each stride 4, 8, 16 and the final 1x1 conv at 32
# (mmpretrain's MobileNetV3, BN eps=1e-3). Derived configs set `arch` (and `out_indices`).
model = dict(
    backbone=dict(
        type='MobileNetV3',
        arch='small',
        out_indices=(1, 3, 8, 12),
        frozen_stages=-1,
        norm_eval=False))
