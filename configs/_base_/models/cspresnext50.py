# CSP-ResNeXt50 (32x4d): 4 stages, 256..2048 channels at strides 4..32. Spelled as older mmcls
# configs (and the seed downstream example) spell it: `mmcls.` scope and `arch=50`.
model = dict(
    backbone=dict(
        type='mmcls.CSPResNeXt',
        arch=50,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', eps=1e-5),
        act_cfg=dict(type='LeakyReLU', inplace=True),
        norm_eval=False))
