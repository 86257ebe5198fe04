# Twins-PCPVT-Base (mmpretrain arch 'base'; mmseg's twins_pcpvt-b configs; timm twins_pcpvt_base)
_base_ = ['../_base_/models/twins.py']
model = dict(backbone=dict(type='PCPVT', arch='base'))
