# EfficientNetV2-S: the stages at strides 4, 8, 16 and the final 1x1 conv at 32 (mmpretrain's
# EfficientNetV2: TF 'same' padding, BN eps=1e-3, Swish). Derived configs set `arch`.
model = dict(
    backbone=dict(
        type='EfficientNetV2',
        arch='s',
        out_indices=(2, 3, 5, -1),
        frozen_stages=0,
        norm_eval=False))
