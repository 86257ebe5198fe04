# YOLOX-tiny: 0.33 depth, 0.375 width (96/192/384 out)
_base_ = ['../_base_/models/yolox_cspdarknet.py']
model = dict(backbone=dict(deepen_factor=0.33, widen_factor=0.375))
