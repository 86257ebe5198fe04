_base_ = ['../_base_/models/vgg.py']
model = dict(backbone=dict(depth=19))
