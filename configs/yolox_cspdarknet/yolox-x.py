# YOLOX-x: 1.33 depth, 1.25 width (320/640/1280 out)
_base_ = ['../_base_/models/yolox_cspdarknet.py']
model = dict(backbone=dict(deepen_factor=1.33, widen_factor=1.25))
