_base_ = ['../_base_/models/poolformer-s12.py']
model = dict(backbone=dict(arch='s24'))
