# HRNetV2-W18 as mmseg's FCN/OCRNet backbone (mmseg 1.2.2 fcn_hr18_*): mmseg's own spelling
# through the twin, so its defaults hold (the fuse layers upsample bilinearly, where mmdet's and
# mmpretrain's HRNet use nearest neighbours): the same weights as hrnet-w18, other outputs.
# SyncBN of the upstream configs is plain BN here; set norm_cfg for multi-GPU training.
model = dict(
    backbone=dict(
        type='mmbackbones.mmseg.HRNet',
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(4, ),
                        num_channels=(64, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(4, 4),
                        num_channels=(18, 36)),
            stage3=dict(num_modules=4, num_branches=3, block='BASIC', num_blocks=(4, 4, 4),
                        num_channels=(18, 36, 72)),
            stage4=dict(num_modules=3, num_branches=4, block='BASIC', num_blocks=(4, 4, 4, 4),
                        num_channels=(18, 36, 72, 144)))))
