# Detection-style fine-tuning: the stem and stage 1 frozen (mmpretrain's CSPNet counts that as
# frozen_stages=0), BatchNorm statistics fixed.
_base_ = ['../_base_/models/cspresnext50.py']
model = dict(backbone=dict(frozen_stages=0, norm_eval=True))
