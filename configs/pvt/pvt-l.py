# PVT-Large (v1): [3,8,27,3] blocks per stage (mmdet's retinanet_pvt-l_fpn_1x_coco backbone)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(arch='l'))
