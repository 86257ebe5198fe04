# mmpretrain's vgg19bn: a BatchNorm after every conv
_base_ = ['../_base_/models/vgg.py']
model = dict(backbone=dict(depth=19, norm_cfg=dict(type='BN')))
