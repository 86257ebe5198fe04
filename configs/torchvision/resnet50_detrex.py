# torchvision ResNet-50 cut as detrex does: layer1..layer4 returned as res2..res5 (strides 4..32),
# every BatchNorm frozen and the stem + res2 frozen (detectron2's FREEZE_AT=2).
# weights='IMAGENET1K_V1' (or 'DEFAULT') downloads to torch hub's cache; offline, put the file in
# torch.hub.get_dir()/checkpoints/ (the error message names the exact path).
model = dict(
    backbone=dict(
        type='TorchvisionBackbone',
        model_name='resnet50',
        weights=None,
        return_nodes={'layer1': 'res2', 'layer2': 'res3', 'layer3': 'res4', 'layer4': 'res5'},
        norm_layer='FrozenBN',
        frozen_stages=1))
