# RetinaNet on any timm model through mmcls.TIMMBackbone (here ConvNeXt-T): timm's
# features_only stages 1..3 (strides 8, 16, 32) feed the FPN directly (start_level=0).
_base_ = ['../_base_/models/retinanet_r50_fpn.py']

custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmcls.TIMMBackbone',
        model_name='convnext_tiny',
        features_only=True,
        pretrained=False,  # True downloads timm's ImageNet weights (needs network access)
        out_indices=(1, 2, 3)),
    # `mmbackbones info THIS_FILE --neck mmdet` prints this list.
    neck=dict(in_channels=[192, 384, 768], start_level=0))
