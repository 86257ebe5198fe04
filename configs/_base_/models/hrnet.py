# HRNet-W18: four branches, 18/36/72/144 channels at strides 4..32 (mmpretrain's HRNet and
# weights; the fuse layers upsample with nearest neighbours). Derived configs set `arch`.
model = dict(
    backbone=dict(
        type='HRNet',
        arch='w18',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        upsample_mode='nearest'))
