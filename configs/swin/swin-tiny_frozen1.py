# Swin-T for detection fine-tuning: patch embedding and stage 1 frozen. The type is mmpretrain's
# Swin, which counts frozen_stages=0 for this (mmdet's/mmseg's Swin, the twin
# mmbackbones.mmdet.SwinTransformer, counts it as frozen_stages=1).
_base_ = ['../_base_/models/swin-tiny.py']
model = dict(backbone=dict(frozen_stages=0, drop_path_rate=0.2))
