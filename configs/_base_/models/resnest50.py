# ResNeSt-50 (mmpretrain names, so mmpretrain checkpoints load with prefix='backbone'; timm's
# resnest*, mmdet's and mmseg's ResNeSt checkpoints are converted on load): a ResNet-D (deep
# stem, avg-down shortcuts) with split-attention 3x3 convs (radix 2). Four outputs res2..res5,
# 256/512/1024/2048 channels at strides 4/8/16/32. Derived configs change depth/stem_channels.
model = dict(
    backbone=dict(
        type='ResNeSt',
        depth=50,
        stem_channels=64,
        groups=1,
        width_per_group=4,
        radix=2,
        reduction_factor=4,
        avg_down_stride=True,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False))
