# ViT-L/16 at 224 (timm vit_large_patch16_224, mmpretrain vit-large-p16).
_base_ = ['../_base_/models/vit-large-p16.py']
