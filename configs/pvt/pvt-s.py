# PVT-Small (v1): [3,4,6,3] blocks per stage (mmdet's retinanet_pvt-s_fpn_1x_coco backbone)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(arch='s'))
