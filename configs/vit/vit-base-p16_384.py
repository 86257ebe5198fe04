# ViT-B/16 at 384: a 24x24 patch grid. A 224 checkpoint (14x14) loads into it: pos_embed is
# resized bicubically on load.
_base_ = ['../_base_/models/vit-base-p16.py']
model = dict(backbone=dict(img_size=384))
