# RTMDet-s's CSPNeXt: 0.33 depth, 0.5 width (128/256/512 out)
_base_ = ['../_base_/models/cspnext.py']
model = dict(backbone=dict(deepen_factor=0.33, widen_factor=0.5))
