# BEiT-B/16 (mmpretrain's BEiTViT 'base': 768-d, 12 layers, 12 heads) as mmpretrain's BEiT
# fine-tuning configs build it: a relative position bias table per layer, layer scale, no
# absolute position embedding, mean-pooled patch tokens normalised by ln2 (timm's fc_norm).
model = dict(
    backbone=dict(
        type='BEiTViT',
        arch='base',
        img_size=224,
        patch_size=16,
        out_indices=-1,
        bias='qv_bias',
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=False,
        out_type='avg_featmap',
        use_abs_pos_emb=False,
        use_rel_pos_bias=True,
        use_shared_rel_pos_bias=False,
        layer_scale_init_value=0.1))
