# Darknet-53 as YOLOv3 uses it (mmdet's defaults: LeakyReLU 0.1, norm_eval)
_base_ = ['../_base_/models/darknet53.py']
