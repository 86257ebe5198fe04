# DetectoRS ResNet-50 (mmdet's DetectoRS_ResNet as its detectors/ configs build it): ConvAWS
# convs everywhere, Switchable Atrous Convolution in stages 2-4. Four outputs res2..res5,
# 256/512/1024/2048 channels at strides 4/8/16/32. use_deform=False runs on PyTorch alone
# (mmcv-lite); the deformable SAC of the paper is detectors_resnet50-sac-deform.py (full mmcv).
# An RFP neck's second backbone adds rfp_inplanes=256 (the ASPP's 4 x 64 channels).
model = dict(
    backbone=dict(
        type='DetectoRS_ResNet',
        depth=50,
        conv_cfg=dict(type='ConvAWS'),
        sac=dict(type='SAC', use_deform=False),
        stage_with_sac=(False, True, True, True),
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False))
