# STDCNet1 (STDC1, "STDCNet813") alone: stages 3-5 at strides 8/16/32, 256/512/1024 channels, as
# mmseg's STDCNet returns them (out_indices over all five stages: 0..4).
model = dict(
    backbone=dict(type='STDCNet', stdc_type='STDCNet1', channels=(32, 64, 256, 512, 1024),
                  bottleneck_type='cat', norm_cfg=dict(type='BN', requires_grad=True),
                  out_indices=(2, 3, 4)))
