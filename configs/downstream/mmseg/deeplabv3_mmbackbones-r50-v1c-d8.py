# The DeepLabV3 config written with the 'mmbackbones' scope and no custom_imports.
_base_ = ['../_base_/models/deeplabv3_r50-d8.py']

checkpoint = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnetv1c50_8xb32_in1k_20220214-3343eccd.pth'  # noqa: E501

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmbackbones.ResNetV1c',
        depth=50,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
