_base_ = ['../_base_/models/mobilenet_v2.py']
model = dict(backbone=dict(widen_factor=1.0))
