# PVT-Tiny (v1): [2,2,2,2] blocks per stage (mmdet's retinanet_pvt-t_fpn_1x_coco backbone)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(arch='t'))
