# ConvNeXt-T as mmpretrain's classifier backbone: last stage only, pooled then normed -> (N, 768).
_base_ = ['../_base_/models/convnext-tiny.py']
model = dict(backbone=dict(out_indices=(3, ), gap_before_final_norm=True))
