# UPerNet on the mmcls/mmpretrain ViT-B/16 (4 outputs as feature maps, layers 3/6/9/12), built by
# mmbackbones. The model-level `pretrained` of the mmseg base is cleared: mmseg would push it into
# the backbone; the checkpoint goes through init_cfg instead.
_base_ = ['../_base_/models/upernet_vit-b16_mln.py']

custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/vit/finetune/vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-98e8652b.pth'  # noqa: E501

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmcls.VisionTransformer',
        arch='base',
        img_size=512,
        patch_size=16,
        out_indices=(2, 5, 8, 11),
        out_type='featmap',
        final_norm=False,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(in_channels=[768, 768, 768, 768]))
