# HRNetV2-W48 as mmseg's FCN/OCRNet backbone (mmseg 1.2.2 fcn_hr48_*): hrnet-w18_mmseg with
# 48/96/192/384 channels.
_base_ = ['./hrnet-w18_mmseg.py']
model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384)))))
