# PVTv2-B4: embed_dims 64, [3,8,27,3] blocks per stage (mmdet's retinanet_pvtv2-b4_fpn_1x_coco
# backbone; timm pvt_v2_b4)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(type='PyramidVisionTransformerV2', arch='b4'))
