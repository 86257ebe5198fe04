# YOLOX-s: 0.33 depth, 0.5 width (128/256/512 out)
_base_ = ['../_base_/models/yolox_cspdarknet.py']
model = dict(backbone=dict(deepen_factor=0.33, widen_factor=0.5))
