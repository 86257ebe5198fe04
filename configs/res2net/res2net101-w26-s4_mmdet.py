# Res2Net-101 (26w x 4s) as mmdet's Faster/Mask/Cascade R-CNN and HTC backbone (mmdet 3.3
# res2net/*): mmdet's own spelling through the twin, so its defaults hold (deep stem, avg-down
# shortcuts, stage 1 frozen and BN in eval mode as mmdet's detectors train it).
model = dict(
    backbone=dict(
        type='mmbackbones.mmdet.Res2Net',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        scales=4,
        base_width=26))
