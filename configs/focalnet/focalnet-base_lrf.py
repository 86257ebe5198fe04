_base_ = ['../_base_/models/focalnet-base_lrf.py']
