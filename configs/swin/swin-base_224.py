_base_ = ['../_base_/models/swin-base.py']
