_base_ = ['../_base_/models/cspresnet50.py']
