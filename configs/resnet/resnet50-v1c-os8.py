# Output stride 8 (DeepLab/PSPNet "d8"): res4 and res5 keep stride 8 with dilations 2 and 4.
# Outputs res2..res5 at strides 4, 8, 8, 8.
_base_ = ['../_base_/models/resnet50.py']
model = dict(
    backbone=dict(type='ResNetV1c', strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)))
