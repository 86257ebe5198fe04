# BEiT v2-B/16 at 224 (mmpretrain's beitv2 benchmark configs; timm beitv2_base_patch16_224):
# BEiT's network, layer scale initialised at 1e-5.
_base_ = ['../_base_/models/beit-base-p16.py']
model = dict(backbone=dict(layer_scale_init_value=1e-5))
