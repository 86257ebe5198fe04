# Twins-SVT-Large (mmpretrain arch 'large'; mmseg's twins_svt-l configs; timm twins_svt_large)
_base_ = ['../_base_/models/twins.py']
model = dict(backbone=dict(type='SVT', arch='large', norm_after_stage=True))
