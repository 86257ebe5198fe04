# ResNet-101: res2..res5 with 256/512/1024/2048 channels at strides 4..32.
_base_ = ['../_base_/models/resnet50.py']
model = dict(backbone=dict(depth=101))
