# YOLOX-nano: depthwise separable convs, 0.33 depth, 0.25 width (64/128/256 out)
_base_ = ['../_base_/models/yolox_cspdarknet.py']
model = dict(backbone=dict(deepen_factor=0.33, widen_factor=0.25, use_depthwise=True))
