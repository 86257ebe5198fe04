# mmpretrain's vgg11bn: a BatchNorm after every conv
_base_ = ['../_base_/models/vgg.py']
model = dict(backbone=dict(depth=11, norm_cfg=dict(type='BN')))
