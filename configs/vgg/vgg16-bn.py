# mmpretrain's vgg16bn: a BatchNorm after every conv
_base_ = ['../_base_/models/vgg.py']
model = dict(backbone=dict(depth=16, norm_cfg=dict(type='BN')))
