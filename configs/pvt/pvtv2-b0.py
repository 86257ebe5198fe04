# PVTv2-B0: embed_dims 32, [2,2,2,2] blocks per stage (mmdet's retinanet_pvtv2-b0_fpn_1x_coco
# backbone; timm pvt_v2_b0)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(type='PyramidVisionTransformerV2', arch='b0'))
