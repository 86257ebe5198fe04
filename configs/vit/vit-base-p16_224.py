# ViT-B/16 at 224 (timm vit_base_patch16_224, mmpretrain vit-base-p16): class-token feature.
_base_ = ['../_base_/models/vit-base-p16.py']
