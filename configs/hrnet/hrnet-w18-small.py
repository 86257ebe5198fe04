# timm's hrnet_w18_small: 16/32/64/128 channels, one module per stage
_base_ = ['../_base_/models/hrnet.py']
model = dict(backbone=dict(arch='w18_small'))
