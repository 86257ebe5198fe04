_base_ = ['../_base_/models/convnext-base.py']
