# MSCAN-B (mmseg segnext_mscan-b_1xb16-adamw-160k_ade20k-512x512):
# 64/128/320/512 channels, depths 3/3/12/3.
_base_ = ['../_base_/models/mscan.py']
model = dict(backbone=dict(arch='b', drop_path_rate=0.1))
