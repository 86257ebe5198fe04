# BEiT-B/16 at 224 (mmpretrain's beit-base-p16 benchmark configs; timm beit_base_patch16_224).
_base_ = ['../_base_/models/beit-base-p16.py']
