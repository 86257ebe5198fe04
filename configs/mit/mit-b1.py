# MiT-B1: 64/128/320/512 channels, 2-2-2-2 blocks per stage (mmseg's segformer_mit-b1 configs)
_base_ = ['../_base_/models/mit-b0.py']
model = dict(backbone=dict(arch='b1'))
