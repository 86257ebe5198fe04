_base_ = ['../_base_/models/focalnet-small_lrf.py']
