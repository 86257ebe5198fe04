# timm ConvNeXt-T: its four stages (feature levels 0..3, strides 4..32) for an FPN neck, written
# in the scoped form; `type='TIMMBackbone', model_name='convnext_tiny'` is the same model.
model = dict(
    backbone=dict(
        type='timm.convnext_tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4))
