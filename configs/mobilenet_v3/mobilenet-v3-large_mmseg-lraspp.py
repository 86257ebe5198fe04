# MobileNetV3-Large as mmseg's LR-ASPP backbone (mmseg 1.2.2 mobilenet-v3-d8_lraspp_*): mmseg's own
# spelling through the twin (mmseg's layer numbering and dilated last stages), outputs of layers
# 1, 3 and 16, BN eps 1e-3. SyncBN of the upstream config is plain BN here.
model = dict(
    backbone=dict(
        type='mmbackbones.mmseg.MobileNetV3',
        arch='large',
        out_indices=(1, 3, 16),
        norm_cfg=dict(type='BN', eps=0.001, requires_grad=True)))
