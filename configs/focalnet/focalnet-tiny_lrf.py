_base_ = ['../_base_/models/focalnet-tiny_lrf.py']
