# timm's res2net50d (and mmdet's Res2Net-50 layout): deep stem and avg-down shortcuts.
_base_ = ['../_base_/models/res2net50-w26-s4.py']
model = dict(backbone=dict(deep_stem=True, avg_down=True))
