# ConvNeXt-Large (mmpretrain arch 'large') as a dense backbone: four LN2d-normed maps, strides 4-32.
# drop_path_rate is mmpretrain's ImageNet value for this size; gap_before_final_norm=False keeps
# (N, C, H, W) maps (mmpretrain's default True returns pooled (N, C) vectors for classifiers).
model = dict(
    backbone=dict(
        type='ConvNeXt',
        arch='large',
        in_channels=3,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.5,
        layer_scale_init_value=1e-6,
        gap_before_final_norm=False,
        frozen_stages=-1))
