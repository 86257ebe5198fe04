# ViT-Ti/16 at 224 (timm vit_tiny_patch16_224 layout: 192-d, 12 layers, 3 heads).
# mmpretrain has no 'tiny' arch name; its 'deit-tiny' is this model.
_base_ = ['../_base_/models/vit-deit-tiny-p16.py']
model = dict(backbone=dict(drop_path_rate=0.))
