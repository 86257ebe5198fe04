# ViT-B/16 as a dense-task backbone (segmentation / detection at 512): four feature maps from
# layers 3, 6, 9 and 12 (out_indices 2, 5, 8, 11 -> names stage3, stage6, stage9, stage12), each
# (B, 768, H/16, W/16), out_strides 16. The last one is after the final LN.
# Feed them to a neck that rescales them to strides 4/8/16/32, e.g. mmseg
# `MultiLevelNeck(in_channels=[768] * 4, out_channels=768, scales=[4, 2, 1, 0.5])`;
# `backbone.out_channels` / `backbone.out_strides` give the neck its in_channels.
# Inputs of any size work (sides padded to a multiple of 16; pos_embed resized to the grid).
_base_ = ['../_base_/models/vit-base-p16.py']
model = dict(
    backbone=dict(
        img_size=512,
        out_indices=(2, 5, 8, 11),
        out_type='featmap',
        drop_rate=0.,
        drop_path_rate=0.1,
        final_norm=True,
        interpolate_mode='bicubic'))
