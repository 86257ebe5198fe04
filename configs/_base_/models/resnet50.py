# ResNet-50 (mmpretrain names, so mmpretrain/mmcls checkpoints load with prefix='backbone'):
# four outputs res2..res5 with 256/512/1024/2048 channels at strides 4/8/16/32.
# Derived configs change depth, type (ResNetV1c/ResNetV1d/ResNeXt), strides/dilations, norm.
model = dict(
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=3,
        num_stages=4,
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        out_indices=(0, 1, 2, 3),
        style='pytorch',
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        zero_init_residual=True))
