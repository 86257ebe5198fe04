_base_ = ['../_base_/models/efficientnet.py']
model = dict(backbone=dict(arch='b5'))
