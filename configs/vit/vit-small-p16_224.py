# ViT-S/16 at 224 (timm vit_small_patch16_224 layout: 384-d, 12 layers, 6 heads = 'deit-small').
_base_ = ['../_base_/models/vit-deit-small-p16.py']
model = dict(backbone=dict(drop_path_rate=0.))
