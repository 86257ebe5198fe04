# ResNeSt-200 (mmpretrain's resnest200; timm's resnest200e): 128-channel deep stem.
_base_ = ['../_base_/models/resnest50.py']
model = dict(backbone=dict(depth=200, stem_channels=128))
