# mmpretrain's vgg13bn: a BatchNorm after every conv
_base_ = ['../_base_/models/vgg.py']
model = dict(backbone=dict(depth=13, norm_cfg=dict(type='BN')))
