# Res2Net-50 26w x 4s (mmpretrain names and ImageNet configs: the 7x7 stem and strided 1x1
# shortcuts, like timm's res2net50_26w_4s; mmdet's Res2Net and timm's res2net50d/101d use the
# deep stem and avg-down shortcuts). Four outputs res2..res5, 256/512/1024/2048 channels at
# strides 4/8/16/32. Derived configs change depth, scales, base_width.
model = dict(
    backbone=dict(
        type='Res2Net',
        depth=50,
        scales=4,
        base_width=26,
        deep_stem=False,
        avg_down=False,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False))
