# CSP-DarkNet53 (YOLOv4's backbone): 5 stages, 64..1024 channels at strides 2..32.
model = dict(
    backbone=dict(
        type='CSPDarkNet',
        depth=53,
        out_indices=(2, 3, 4),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', eps=1e-5),
        act_cfg=dict(type='LeakyReLU', inplace=True),
        norm_eval=False))
