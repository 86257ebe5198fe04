# Res2Net-50 14w x 8s (mmpretrain's res2net50-w14-s8; timm's res2net50_14w_8s).
_base_ = ['../_base_/models/res2net50-w26-s4.py']
model = dict(backbone=dict(depth=50, scales=8, base_width=14))
