# DetectoRS ResNet-50 as the paper and mmdet's detectors/ configs: deformable SAC (needs the
# full mmcv with its compiled ops; mmcv-lite refuses it at construction, saying so).
_base_ = ['../_base_/models/detectors_resnet50.py']
model = dict(backbone=dict(sac=dict(type='SAC', use_deform=True)))
