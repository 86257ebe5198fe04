# ResNeSt-50 (mmpretrain's resnest50; timm's resnest50d): the base as is.
_base_ = ['../_base_/models/resnest50.py']
