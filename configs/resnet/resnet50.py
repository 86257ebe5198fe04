# ResNet-50: res2..res5 with 256/512/1024/2048 channels at strides 4..32 (the base as is).
_base_ = ['../_base_/models/resnet50.py']
