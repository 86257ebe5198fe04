# Res2Net-50 48w x 2s (mmpretrain's res2net50-w48-s2; timm's res2net50_48w_2s).
_base_ = ['../_base_/models/res2net50-w26-s4.py']
model = dict(backbone=dict(depth=50, scales=2, base_width=48))
