# TridentNet ResNet-101, caffe style.
_base_ = ['../_base_/models/tridentnet_r50-caffe.py']
model = dict(backbone=dict(depth=101))
