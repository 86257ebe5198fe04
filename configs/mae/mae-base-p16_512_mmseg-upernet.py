# MAE ViT-B/16 as mmseg's UPerNet backbone (mmseg 1.2.2 mae-base_upernet_8xb2-amp-160k_ade20k-
# 512x512): BEiT's network with q/k/v biases, an absolute position embedding and zero-initialised
# relative position tables (mmbackbones.mmseg.MAE); maps from layers 4, 6, 8, 12.
model = dict(
    backbone=dict(
        type='mmbackbones.mmseg.MAE',
        img_size=(512, 512),
        patch_size=16,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4,
        init_values=1.0,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        out_indices=[3, 5, 7, 11]))
