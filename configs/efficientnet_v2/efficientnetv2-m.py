_base_ = ['../_base_/models/efficientnet_v2.py']
model = dict(backbone=dict(arch='m'))
