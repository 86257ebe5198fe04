_base_ = ['../_base_/models/regnet.py']
model = dict(backbone=dict(arch='regnetx_8.0gf'))
