# mmdet's RegNet detection setting: stem and stage 1 frozen, BatchNorm statistics fixed.
_base_ = ['../_base_/models/regnet.py']
model = dict(backbone=dict(arch='regnetx_3.2gf', frozen_stages=1, norm_eval=True))
