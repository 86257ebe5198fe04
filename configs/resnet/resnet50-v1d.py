# ResNet-50-D: deep stem, and average pooling before the 1x1 conv of each downsample branch.
_base_ = ['../_base_/models/resnet50.py']
model = dict(backbone=dict(type='ResNetV1d'))
