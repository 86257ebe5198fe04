# Res2Net-101 26w x 4s (mmpretrain's res2net101-w26-s4; timm's res2net101_26w_4s).
_base_ = ['../_base_/models/res2net50-w26-s4.py']
model = dict(backbone=dict(depth=101, scales=4, base_width=26))
