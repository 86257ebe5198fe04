# mmseg's hr18s (timm's hrnet_w18_small_v2): two blocks per branch, 1/3/2 modules in stages 2-4
_base_ = ['../_base_/models/hrnet.py']
model = dict(backbone=dict(arch='w18_small_v2'))
