_base_ = ['../_base_/models/swin-small.py']
