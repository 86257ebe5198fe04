_base_ = ['../_base_/models/internimage-base.py']
