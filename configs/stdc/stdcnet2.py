# STDCNet2 (STDC2, "STDCNet1446") alone: stages 3-5 at strides 8/16/32, 256/512/1024 channels.
_base_ = ['./stdcnet1.py']
model = dict(backbone=dict(stdc_type='STDCNet2'))
