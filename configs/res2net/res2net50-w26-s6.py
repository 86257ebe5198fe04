# Res2Net-50 26w x 6s (mmpretrain's res2net50-w26-s6; timm's res2net50_26w_6s).
_base_ = ['../_base_/models/res2net50-w26-s4.py']
model = dict(backbone=dict(depth=50, scales=6, base_width=26))
