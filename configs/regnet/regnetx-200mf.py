# A dict arch: timm's regnetx_002 (24/56/152/368 channels), not in mmpretrain's table.
# Its timm weights load through mmbackbones.checkpoint.converters.timm_regnet.
# (`_delete_` because the base's arch is a string and a dict does not merge into it.)
_base_ = ['../_base_/models/regnet.py']
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, w0=24, wa=36.44, wm=2.49, group_w=8, depth=13, bot_mul=1.0)))
