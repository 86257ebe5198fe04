# RTMDet-m's CSPNeXt: 0.67 depth, 0.75 width (192/384/768 out)
_base_ = ['../_base_/models/cspnext.py']
model = dict(backbone=dict(deepen_factor=0.67, widen_factor=0.75))
