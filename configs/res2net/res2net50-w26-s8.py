# Res2Net-50 26w x 8s (mmpretrain's res2net50-w26-s8; timm's res2net50_26w_8s).
_base_ = ['../_base_/models/res2net50-w26-s4.py']
model = dict(backbone=dict(depth=50, scales=8, base_width=26))
