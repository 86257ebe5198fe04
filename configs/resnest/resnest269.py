# ResNeSt-269 (mmpretrain's resnest269; timm's resnest269e): 128-channel deep stem.
_base_ = ['../_base_/models/resnest50.py']
model = dict(backbone=dict(depth=269, stem_channels=128))
