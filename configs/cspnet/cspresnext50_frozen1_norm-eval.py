# Detection-style fine-tuning: the stem and stage 1 frozen, BatchNorm statistics fixed.
_base_ = ['../_base_/models/cspresnext50.py']
model = dict(backbone=dict(frozen_stages=1, norm_eval=True))
