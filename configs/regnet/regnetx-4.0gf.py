# As the seed downstream example spells it: the `mmcls.` scope resolves to mmbackbones' RegNet.
_base_ = ['../_base_/models/regnet.py']
model = dict(backbone=dict(type='mmcls.RegNet', arch='regnetx_4.0gf'))
