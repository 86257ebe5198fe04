# BEiT-B/16 at 384 (timm beit_base_patch16_384): the relative position window is 24x24.
_base_ = ['../_base_/models/beit-base-p16.py']
model = dict(backbone=dict(img_size=384))
