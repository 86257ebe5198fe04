# torchvision Swin-T: the four stages (features.1/3/5/7, strides 4..32). torchvision's Swin works
# channels-last; TorchvisionBackbone returns (N, C, H, W) maps like every other backbone.
model = dict(
    backbone=dict(
        type='TorchvisionBackbone',
        model_name='swin_t',
        weights=None,
        return_nodes={'features.1': 'stage1', 'features.3': 'stage2', 'features.5': 'stage3',
                      'features.7': 'stage4'}))
