# PVTv2-B1: embed_dims 64, [2,2,2,2] blocks per stage (mmdet's retinanet_pvtv2-b1_fpn_1x_coco
# backbone; timm pvt_v2_b1)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(type='PyramidVisionTransformerV2', arch='b1'))
