# YOLOX-l: full depth and width (256/512/1024 out)
_base_ = ['../_base_/models/yolox_cspdarknet.py']
