# ResNeXt-50 32x4d: grouped 3x3 convs, 32 groups of 4 channels in res2 (doubling per stage).
_base_ = ['../_base_/models/resnet50.py']
model = dict(backbone=dict(type='ResNeXt', groups=32, width_per_group=4))
