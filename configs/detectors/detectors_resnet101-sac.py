# DetectoRS ResNet-101 with (non-deformable) SAC in stages 2-4 and ConvAWS convs.
_base_ = ['../_base_/models/detectors_resnet50.py']
model = dict(backbone=dict(depth=101))
