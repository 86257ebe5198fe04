# RetinaNet whose backbone is the mmcls/mmpretrain ResNet-50, built by mmbackbones.
# custom_imports makes mmdet import mmbackbones, which registers the 'mmcls' scope; the
# pretrained classifier checkpoint loads with prefix='backbone.'.
_base_ = ['../_base_/models/retinanet_r50_fpn.py']

custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmcls.ResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    # `mmbackbones info THIS_FILE --neck mmdet` prints this list.
    neck=dict(in_channels=[256, 512, 1024, 2048]))
