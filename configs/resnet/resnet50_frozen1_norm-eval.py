# mmdet's detection setting: stem and res2 frozen, BatchNorm statistics fixed during training.
_base_ = ['../_base_/models/resnet50.py']
model = dict(backbone=dict(frozen_stages=1, norm_eval=True))
