# ResNet-50-C: three 3x3 convs in the stem (stem.0/1/2 in the state dict).
_base_ = ['../_base_/models/resnet50.py']
model = dict(backbone=dict(type='ResNetV1c'))
