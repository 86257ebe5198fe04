# STDC-Seg's backbone as mmseg 1.2.2's stdc configs build it (_base_/models/stdc.py): STDCNet1
# ('cat' blocks, 32/64/256/512/1024 channels, BN) inside the context path (ARMs on the stride-16
# and stride-32 maps, 128 channels; FFM to 256 channels). Outputs: stage3 (stride 8, the detail
# head's input), arm1 (stride 16), arm2 (stride 8), ffm (stride 8, the decode head's input).
# Derived configs set backbone_cfg's stdc_type ('STDCNet1', 'STDCNet2').
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        type='STDCContextPathNet',
        backbone_cfg=dict(
            type='STDCNet',
            stdc_type='STDCNet1',
            in_channels=3,
            channels=(32, 64, 256, 512, 1024),
            bottleneck_type='cat',
            num_convs=4,
            norm_cfg=norm_cfg,
            act_cfg=dict(type='ReLU'),
            with_final_conv=False),
        last_in_channels=(1024, 512),
        out_channels=128,
        ffm_cfg=dict(in_channels=384, out_channels=256, scale_factor=4)))
