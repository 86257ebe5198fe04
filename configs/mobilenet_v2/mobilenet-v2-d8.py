# MobileNetV2 at output stride 8 (mmseg's mobilenet-v2-d8 FCN/PSPNet/DeepLabV3(+) backbone):
# stages 4..7 keep stride 8 with dilations 2, 2, 4, 4; outputs of stages 2, 3, 5, 7 (24, 32,
# 96, 320 channels at strides 4, 8, 8, 8); the final 1x1 conv is not built.
_base_ = ['../_base_/models/mobilenet_v2.py']
model = dict(
    backbone=dict(
        widen_factor=1.0,
        strides=(1, 2, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4),
        out_indices=(1, 2, 4, 6)))
