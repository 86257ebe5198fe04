# Swin-T for detection fine-tuning: patch embedding and stage 1 frozen (mmdet's frozen_stages=1).
_base_ = ['../_base_/models/swin-tiny.py']
model = dict(backbone=dict(frozen_stages=1, drop_path_rate=0.2))
