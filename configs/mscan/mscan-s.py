# MSCAN-S (mmseg segnext_mscan-s_1xb16-adamw-160k_ade20k-512x512):
# 64/128/320/512 channels, depths 2/2/4/2.
_base_ = ['../_base_/models/mscan.py']
model = dict(backbone=dict(arch='s', drop_path_rate=0.1))
