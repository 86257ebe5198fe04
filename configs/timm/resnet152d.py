# timm's ResNet-152-D (deep stem, avg-pool downsample) as a detection backbone: the four residual
# stages (timm feature levels 1..4, strides 4..32; level 0 is the stride-2 stem). frozen_stages=1
# freezes the stem and layer1 with every BatchNorm frozen, the usual mmdet/detectron2 setting.
# pretrained=True fetches timm's weights; offline, set checkpoint_path='/path/to/resnet152d.pth'.
model = dict(
    backbone=dict(
        type='TIMMBackbone',
        model_name='resnet152d',
        features_only=True,
        pretrained=False,
        out_indices=(1, 2, 3, 4),
        norm_layer='FrozenBN',
        frozen_stages=1,
        drop_path_rate=0.2))
