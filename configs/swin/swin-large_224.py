_base_ = ['../_base_/models/swin-large.py']
