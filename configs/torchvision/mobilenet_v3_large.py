# torchvision MobileNetV3-Large: the last block of each stride (4, 8, 16) and the final 1x1 conv
# (stride 32, 960 channels). `list_torchvision_nodes('mobilenet_v3_large')` lists other nodes.
model = dict(
    backbone=dict(
        type='TorchvisionBackbone',
        model_name='mobilenet_v3_large',
        weights=None,
        return_nodes={'features.3': 'stage1', 'features.6': 'stage2', 'features.12': 'stage3',
                      'features.16': 'stage4'}))
