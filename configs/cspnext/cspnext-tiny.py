# RTMDet-tiny's CSPNeXt: 0.167 depth, 0.375 width (96/192/384 out)
_base_ = ['../_base_/models/cspnext.py']
model = dict(backbone=dict(deepen_factor=0.167, widen_factor=0.375))
