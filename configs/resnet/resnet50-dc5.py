# ResNet-50-DC5 (detectron2's res5_dilation=2): res5 keeps stride 16 with dilation 2.
# Outputs res2..res5 at strides 4, 8, 16, 16.
_base_ = ['../_base_/models/resnet50.py']
model = dict(backbone=dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)))
