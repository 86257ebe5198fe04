# timm ViT-B/16 as a plain (single-scale) backbone: spatial maps (N, 768, H/16, W/16) of blocks
# 3, 5, 7 and 11 through timm's forward_intermediates. dynamic_img_size=True lets the position
# embedding be interpolated to any input size (detection inputs are rarely 224x224).
model = dict(
    backbone=dict(
        type='TIMMBackbone',
        model_name='vit_base_patch16_224',
        out_indices=(3, 5, 7, 11),
        dynamic_img_size=True,
        drop_path_rate=0.1))
