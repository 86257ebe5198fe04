# Twins-PCPVT-Small (mmpretrain arch 'small'; mmseg's twins_pcpvt-s configs; timm twins_pcpvt_small)
_base_ = ['../_base_/models/twins.py']
model = dict(backbone=dict(type='PCPVT', arch='small'))
