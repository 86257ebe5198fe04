# MiT-B2: 64/128/320/512 channels, 3-4-6-3 blocks per stage (mmseg's segformer_mit-b2 configs)
_base_ = ['../_base_/models/mit-b0.py']
model = dict(backbone=dict(arch='b2'))
