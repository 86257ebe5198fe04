# STDC1-Seg's backbone (mmseg stdc1_4xb12-80k_cityscapes-512x1024): STDCNet1 (STDC blocks
# 2/2/2) with the context path.
_base_ = ['../_base_/models/stdc.py']
model = dict(backbone=dict(backbone_cfg=dict(stdc_type='STDCNet1')))
