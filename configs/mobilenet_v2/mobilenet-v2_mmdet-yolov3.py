# MobileNetV2 as mmdet's YOLOv3 backbone (mmdet 3.3 yolov3_mobilenetv2_*): mmdet's own spelling
# through the twin, outputs of stages 3, 5 and 7 (32, 96, 320 channels at strides 8, 16, 32),
# LeakyReLU(0.1) in place of ReLU6 as that detector trains it.
model = dict(
    backbone=dict(
        type='mmbackbones.mmdet.MobileNetV2',
        out_indices=(2, 4, 6),
        act_cfg=dict(type='LeakyReLU', negative_slope=0.1)))
