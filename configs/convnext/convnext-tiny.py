_base_ = ['../_base_/models/convnext-tiny.py']
