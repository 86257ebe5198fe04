_base_ = ['../_base_/models/internimage-tiny.py']
