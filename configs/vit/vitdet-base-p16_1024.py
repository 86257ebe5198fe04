# ViTDet ViT-B/16 (detectron2/detrex COCO configs): 1024 px, window 14 with global attention in
# blocks 2, 5, 8, 11, decomposed relative positions, the position embedding of 224 px pre-training;
# one stride-16 map for the SimpleFeaturePyramid neck.
model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        final_norm=False,
        with_cls_token=False,
        out_type='featmap',
        window_size=14,
        window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],
        use_rel_pos=True,
        rel_pos_size=64))
# with its pyramid: build_backbone(cfg, neck=dict(type='SimpleFeaturePyramid', in_channels=768,
# out_channels=256, top_block=True)) -> p2..p6
