# PVT-Medium (v1): [3,4,18,3] blocks per stage (mmdet's retinanet_pvt-m_fpn_1x_coco backbone)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(arch='m'))
