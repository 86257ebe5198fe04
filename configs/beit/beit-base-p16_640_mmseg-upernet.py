# BEiT-B/16 as mmseg's UPerNet backbone (mmseg 1.2.2 beit-base_upernet_8xb2-160k_ade20k-640x640):
# mmseg's own spelling through the twin, four (B, 768, H/16, W/16) maps from layers 4, 6, 8, 12
# for mmseg's Feature2Pyramid neck (rescales 4, 2, 1, 0.5).
model = dict(
    backbone=dict(
        type='mmbackbones.mmseg.BEiT',
        img_size=(640, 640),
        patch_size=16,
        in_channels=3,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4,
        out_indices=(3, 5, 7, 11),
        qv_bias=True,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        act_cfg=dict(type='GELU'),
        norm_eval=False,
        init_values=0.1))
