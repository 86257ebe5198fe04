# MiT-B4: 64/128/320/512 channels, 3-8-27-3 blocks per stage (mmseg's segformer_mit-b4 configs)
_base_ = ['../_base_/models/mit-b0.py']
model = dict(backbone=dict(arch='b4'))
