# PVTv2-B2: embed_dims 64, [3,4,6,3] blocks per stage (mmdet's retinanet_pvtv2-b2_fpn_1x_coco
# backbone; timm pvt_v2_b2)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(type='PyramidVisionTransformerV2', arch='b2'))
