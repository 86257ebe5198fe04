# EfficientNetV2-S (timm's TF port) through the 'timm.<model_name>' scope: the last four feature
# levels (strides 4..32). Fused MBConv BatchNorm+act layers stay trainable here (norm_eval=False).
model = dict(
    backbone=dict(
        type='timm.tf_efficientnetv2_s',
        out_indices=(1, 2, 3, 4),
        drop_path_rate=0.1))
