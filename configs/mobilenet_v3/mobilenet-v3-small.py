_base_ = ['../_base_/models/mobilenet_v3.py']
model = dict(backbone=dict(arch='small'))
