# ResNetV1c-50 at output stride 8 as mmseg's PSPNet/DeepLabV3/FCN "r50-d8" backbone (mmseg 1.2.2):
# mmseg's own spelling through the twin, so its defaults hold: the first block of each dilated
# stage uses half the dilation (contract_dilation=True), which the mmpretrain-style core
# ResNetV1c does not do by default. Stages 3-4 dilated 2 and 4, outputs at strides 4, 8, 8, 8.
# SyncBN of the upstream configs is plain BN here; set norm_cfg for multi-GPU training.
model = dict(
    backbone=dict(
        type='mmbackbones.mmseg.ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        contract_dilation=True))
