# InternImage 'small' (the official variant, DCNv3 in pure PyTorch) as a dense backbone: four
# LayerNorm-normed maps, strides 4-32. drop_path_rate as detrex's InternImage detection configs.
model = dict(
    backbone=dict(
        type='InternImage',
        arch='small',
        in_channels=3,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        frozen_stages=-1))
