# ResNeSt-101 at output stride 8 as mmseg's FCN/PSPNet/DeepLabV3(+) backbone (mmseg 1.2.2
# resnest_s101-d8_*): mmseg's own spelling through the twin (deep 128-channel stem, radix 2,
# avg-down strides, stages 3-4 dilated 2 and 4 with contracted first dilation). SyncBN of the
# upstream config is plain BN here; set norm_cfg for multi-GPU training.
model = dict(
    backbone=dict(
        type='mmbackbones.mmseg.ResNeSt',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        stem_channels=128,
        radix=2,
        reduction_factor=4,
        avg_down_stride=True))
