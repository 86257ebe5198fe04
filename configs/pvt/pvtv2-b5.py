# PVTv2-B5: embed_dims 64, [3,6,40,3] blocks per stage (mmdet's retinanet_pvtv2-b5_fpn_1x_coco
# backbone; timm pvt_v2_b5)
_base_ = ['../_base_/models/pvt.py']
model = dict(backbone=dict(type='PyramidVisionTransformerV2', arch='b5'))
