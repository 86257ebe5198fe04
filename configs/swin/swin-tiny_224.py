_base_ = ['../_base_/models/swin-tiny.py']
