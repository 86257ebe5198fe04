# Mask R-CNN written with the 'mmbackbones' scope and no custom_imports.
_base_ = ['../_base_/models/mask-rcnn_r50_fpn.py']

checkpoint = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmbackbones.ResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
