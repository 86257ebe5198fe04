# MSCAN (SegNeXt's encoder) as mmseg 1.2.2's segnext_mscan-* configs build it: four stages at
# strides 4/8/16/32, BatchNorm (mmseg's class defaults to SyncBN), layer scales, GELU.
# Derived configs set `arch` ('t', 's', 'b', 'l': mmseg's embed_dims/depths/mlp_ratios).
model = dict(
    backbone=dict(
        type='MSCAN',
        arch='t',
        drop_rate=0.0,
        drop_path_rate=0.1,
        attention_kernel_sizes=[5, [1, 7], [1, 11], [1, 21]],
        attention_kernel_paddings=[2, [0, 3], [0, 5], [0, 10]],
        act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='BN', requires_grad=True),
        out_indices=(0, 1, 2, 3)))
