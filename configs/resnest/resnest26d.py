# timm's resnest26d: two blocks per stage (our depth 26), 64-channel deep stem.
_base_ = ['../_base_/models/resnest50.py']
model = dict(backbone=dict(depth=26))
