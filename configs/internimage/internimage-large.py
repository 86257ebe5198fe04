_base_ = ['../_base_/models/internimage-large.py']
