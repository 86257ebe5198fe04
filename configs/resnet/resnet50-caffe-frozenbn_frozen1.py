# detectron2's MSRA R-50 setting: stride in the first 1x1 conv (style='caffe', detectron2's
# stride_in_1x1=True), FrozenBN everywhere, stem and res2 frozen (detectron2's freeze_at=2).
_base_ = ['../_base_/models/resnet50.py']
model = dict(
    backbone=dict(
        style='caffe',
        norm_cfg=dict(_delete_=True, type='FrozenBN'),
        frozen_stages=1))
