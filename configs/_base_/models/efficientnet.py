# EfficientNet-B0: the stages at strides 4, 8, 16 and the final 1x1 conv at 32 (mmpretrain's
# EfficientNet: TF 'same' padding, BN eps=1e-3, Swish). Derived configs set `arch`.
model = dict(
    backbone=dict(
        type='EfficientNet',
        arch='b0',
        out_indices=(2, 3, 4, 6),
        frozen_stages=0,
        norm_eval=False))
