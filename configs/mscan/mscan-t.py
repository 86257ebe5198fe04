# MSCAN-T (mmseg segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512):
# 32/64/160/256 channels, depths 3/3/5/2.
_base_ = ['../_base_/models/mscan.py']
model = dict(backbone=dict(arch='t', drop_path_rate=0.1))
