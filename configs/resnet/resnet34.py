# ResNet-34: res2..res5 with 64/128/256/512 channels at strides 4..32.
_base_ = ['../_base_/models/resnet50.py']
model = dict(backbone=dict(depth=34))
