# MSCAN-L (mmseg segnext_mscan-l_1xb16-adamw-160k_ade20k-512x512):
# 64/128/320/512 channels, depths 3/5/27/3.
_base_ = ['../_base_/models/mscan.py']
model = dict(backbone=dict(arch='l', drop_path_rate=0.3))
