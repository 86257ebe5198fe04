# Swin-L at 384 px (mmpretrain's swin-large_16xb64_in1k-384px): window 12.
_base_ = ['../_base_/models/swin-large.py']
model = dict(backbone=dict(img_size=384, window_size=12))
