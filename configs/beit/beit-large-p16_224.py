# BEiT-L/16 at 224 (timm beit_large_patch16_224: 1024-d, 24 layers, 16 heads, layer scale 1e-5).
_base_ = ['../_base_/models/beit-base-p16.py']
model = dict(backbone=dict(arch='large', img_size=224, layer_scale_init_value=1e-5))
