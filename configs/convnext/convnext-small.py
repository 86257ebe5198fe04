_base_ = ['../_base_/models/convnext-small.py']
