_base_ = ['../_base_/models/hrnet.py']
model = dict(backbone=dict(arch='w64'))
