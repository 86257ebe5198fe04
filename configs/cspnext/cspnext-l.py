# RTMDet-l's CSPNeXt: full depth and width (256/512/1024 out)
_base_ = ['../_base_/models/cspnext.py']
