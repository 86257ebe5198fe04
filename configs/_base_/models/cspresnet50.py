# CSP-ResNet50: 4 stages, 128..1024 channels at strides 4..32 (`depth` as mmpretrain spells it).
model = dict(
    backbone=dict(
        type='CSPResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', eps=1e-5),
        act_cfg=dict(type='LeakyReLU', inplace=True),
        norm_eval=False))
