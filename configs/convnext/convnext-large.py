_base_ = ['../_base_/models/convnext-large.py']
