# The UPerNet config written with the 'mmbackbones' scope and no custom_imports.
_base_ = ['../_base_/models/upernet_vit-b16_mln.py']

checkpoint = 'https://download.openmmlab.com/mmclassification/v0/vit/finetune/vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-98e8652b.pth'  # noqa: E501

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmbackbones.VisionTransformer',
        arch='base',
        img_size=512,
        out_indices=(2, 5, 8, 11),
        out_type='featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(in_channels=[768, 768, 768, 768]))
