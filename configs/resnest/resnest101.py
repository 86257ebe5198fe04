# ResNeSt-101 (mmpretrain's resnest101; timm's resnest101e): 128-channel deep stem.
_base_ = ['../_base_/models/resnest50.py']
model = dict(backbone=dict(depth=101, stem_channels=128))
