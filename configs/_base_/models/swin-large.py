# Swin-Large (mmpretrain arch 'large') as a dense backbone: four LN-normed maps, strides 4-32.
# drop_path_rate is mmpretrain's ImageNet value for this size. Any input size runs (padding).
model = dict(
    backbone=dict(
        type='SwinTransformer',
        arch='large',
        img_size=224,
        patch_size=4,
        window_size=7,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.5,
        frozen_stages=-1,
        pad_small_map=False))
