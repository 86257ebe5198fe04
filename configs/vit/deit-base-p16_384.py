# DeiT-Base at 384 (24x24 patch grid).
_base_ = ['../_base_/models/vit-deit-base-p16.py']
model = dict(backbone=dict(img_size=384))
