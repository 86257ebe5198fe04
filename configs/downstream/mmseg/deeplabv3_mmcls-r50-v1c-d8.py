# DeepLabV3 on a dilated mmcls ResNetV1c-50 (strides 1,2,1,1 and dilations 1,1,2,4: output
# stride 8), built by mmbackbones. The mmseg base's model-level `pretrained` is cleared (see the
# UPerNet config); the checkpoint goes through init_cfg.
_base_ = ['../_base_/models/deeplabv3_r50-d8.py']

custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnetv1c50_8xb32_in1k_20220214-3343eccd.pth'  # noqa: E501
norm_cfg = dict(type='SyncBN', requires_grad=True)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmcls.ResNetV1c',
        depth=50,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    # `mmbackbones info THIS_FILE --neck mmseg` prints [256, 512, 1024, 2048]: ASPP reads
    # in_index=3, the auxiliary FCN head in_index=2.
    decode_head=dict(in_channels=2048),
    auxiliary_head=dict(in_channels=1024))
