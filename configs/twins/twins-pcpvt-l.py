# Twins-PCPVT-Large (mmpretrain arch 'large'; mmseg's twins_pcpvt-l configs; timm twins_pcpvt_large)
_base_ = ['../_base_/models/twins.py']
model = dict(backbone=dict(type='PCPVT', arch='large'))
