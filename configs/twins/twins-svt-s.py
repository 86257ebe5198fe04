# Twins-SVT-Small (mmpretrain arch 'small'; mmseg's twins_svt-s configs; timm twins_svt_small)
_base_ = ['../_base_/models/twins.py']
model = dict(backbone=dict(type='SVT', arch='small', norm_after_stage=True))
