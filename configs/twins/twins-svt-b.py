# Twins-SVT-Base (mmpretrain arch 'base'; mmseg's twins_svt-b configs; timm twins_svt_base)
_base_ = ['../_base_/models/twins.py']
model = dict(backbone=dict(type='SVT', arch='base', norm_after_stage=True))
