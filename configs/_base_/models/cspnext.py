# RTMDet's CSPNeXt (mmdet 3.3's CSPNeXt): RTMDet-l, stem + four stages with channel
# attention, outputs at strides 8/16/32. Derived configs set the depth/width factors.
model = dict(
    backbone=dict(
        type='CSPNeXt',
        arch='P5',
        expand_ratio=0.5,
        deepen_factor=1.0,
        widen_factor=1.0,
        out_indices=(2, 3, 4),
        frozen_stages=-1,
        channel_attention=True,
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='SiLU', inplace=True),
        norm_eval=False))
