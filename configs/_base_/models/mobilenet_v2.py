# MobileNetV2 1.0: outputs layer2/layer3/layer5/conv2, 24/32/96/1280 channels at strides 4..32
# (mmdet's choice; mmpretrain's MobileNetV2 and weights). Derived configs set `widen_factor`.
model = dict(
    backbone=dict(
        type='MobileNetV2',
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False))
