# RTMDet-x-P6's CSPNeXt: five stages, outputs at strides 8/16/32/64 (320/640/960/1280 out)
_base_ = ['../_base_/models/cspnext.py']
model = dict(backbone=dict(arch='P6', deepen_factor=1.33, widen_factor=1.25,
                           out_indices=(2, 3, 4, 5)))
