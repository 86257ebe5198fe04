_base_ = ['../_base_/models/efficientnet.py']
# EdgeTPU: ReLU (mmpretrain's efficientnet_em config)
model = dict(backbone=dict(arch='em', act_cfg=dict(type='ReLU')))
