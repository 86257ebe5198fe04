_base_ = ['../_base_/models/efficientnet.py']
# EdgeTPU: ReLU (mmpretrain's efficientnet_es config)
model = dict(backbone=dict(arch='es', act_cfg=dict(type='ReLU')))
