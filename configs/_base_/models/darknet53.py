# Darknet-53 (YOLOv3; mmdet 3.3's Darknet): outputs of the last three stages, strides 8/16/32.
model = dict(
    backbone=dict(
        type='Darknet',
        depth=53,
        out_indices=(3, 4, 5),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        act_cfg=dict(type='LeakyReLU', negative_slope=0.1),
        norm_eval=True))
