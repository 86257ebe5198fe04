_base_ = ['../_base_/models/mobilenet_v3.py']
model = dict(backbone=dict(arch='large', out_indices=(3, 6, 12, 16)))
