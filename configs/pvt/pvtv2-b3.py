# PVTv2-B3: embed_dims 64, [3,4,18,3] blocks per stage (mmdet's retinanet_pvtv2-b3_fpn_1x_coco
# backbone; timm pvt_v2_b3)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(type='PyramidVisionTransformerV2', arch='b3'))
