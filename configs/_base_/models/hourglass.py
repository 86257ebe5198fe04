# Hourglass-104 (CornerNet / CentripetalNet in mmdet): two stacks, each output 256 channels at
# stride 4. mmdet's HourglassNet arguments; out_indices chooses stacks.
model = dict(
    backbone=dict(
        type='HourglassNet',
        downsample_times=5,
        num_stacks=2,
        stage_channels=[256, 256, 384, 384, 384, 512],
        stage_blocks=[2, 2, 2, 2, 2, 4],
        feat_channel=256,
        norm_cfg=dict(type='BN', requires_grad=True),
        out_indices=(0, 1)))
