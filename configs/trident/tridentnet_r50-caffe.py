# TridentNet ResNet-50, caffe style (mmdet's tridentnet_r50-caffe_*_coco backbone).
_base_ = ['../_base_/models/tridentnet_r50-caffe.py']
