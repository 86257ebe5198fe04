_base_ = ['../_base_/models/internimage-small.py']
