# STDC2-Seg's backbone (mmseg stdc2_4xb12-80k_cityscapes-512x1024): STDCNet2 (STDC blocks
# 4/5/3) with the context path.
_base_ = ['../_base_/models/stdc.py']
model = dict(backbone=dict(backbone_cfg=dict(stdc_type='STDCNet2')))
