# BEiT v2-L/16 at 224 (timm beitv2_large_patch16_224).
_base_ = ['../_base_/models/beit-base-p16.py']
model = dict(backbone=dict(arch='large', layer_scale_init_value=1e-5))
