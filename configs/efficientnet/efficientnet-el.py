_base_ = ['../_base_/models/efficientnet.py']
# EdgeTPU: ReLU (mmpretrain's efficientnet_el config)
model = dict(backbone=dict(arch='el', act_cfg=dict(type='ReLU')))
