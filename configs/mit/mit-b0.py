# MiT-B0: 32/64/160/256 channels, 2-2-2-2 blocks per stage (mmseg's segformer_mit-b0 configs)
_base_ = ['../_base_/models/mit-b0.py']
model = dict(backbone=dict(arch='b0'))
