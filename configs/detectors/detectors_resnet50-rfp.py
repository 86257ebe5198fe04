# The second backbone of DetectoRS's Recursive Feature Pyramid (mmdet's RFP neck builds it from
# its rfp_backbone dict and calls rfp_forward): rfp_inplanes=256 adds the 1x1 rfp_conv to the
# first block of stages 2-4. Its plain forward is the backbone's.
_base_ = ['../_base_/models/detectors_resnet50.py']
model = dict(backbone=dict(rfp_inplanes=256))
