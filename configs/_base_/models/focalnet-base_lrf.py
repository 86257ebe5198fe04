# FocalNet 'base_lrf' (the official/timm variant name) as a dense backbone: four LayerNorm-normed
# maps, strides 4-32. drop_path_rate as detrex's FocalNet detection configs use it.
model = dict(
    backbone=dict(
        type='FocalNet',
        arch='base_lrf',
        in_channels=3,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        frozen_stages=-1))
