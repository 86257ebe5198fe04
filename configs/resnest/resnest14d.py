# timm's resnest14d: one block per stage (our depth 14), 64-channel deep stem.
_base_ = ['../_base_/models/resnest50.py']
model = dict(backbone=dict(depth=14))
