# TridentNet ResNet-50 (mmdet's tridentnet/ configs: caffe style, C4): three stages, the third
# (res4, 1024 channels, stride 16) of trident blocks with dilations 1/2/3. In training its output
# holds the three branches concatenated along the batch (3N rows); in eval mode only branch
# test_branch_idx=1 runs (N rows).
model = dict(
    backbone=dict(
        type='TridentResNet',
        depth=50,
        num_branch=3,
        test_branch_idx=1,
        trident_dilations=(1, 2, 3),
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        style='caffe',
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True))
