# YOLOX's CSP-Darknet (mmdet 3.3's CSPDarknet; registered here as YOLOXCSPDarknet): YOLOX-l,
# stem + four stages, outputs at strides 8/16/32. Derived configs set the depth/width factors.
model = dict(
    backbone=dict(
        type='YOLOXCSPDarknet',
        arch='P5',
        deepen_factor=1.0,
        widen_factor=1.0,
        out_indices=(2, 3, 4),
        frozen_stages=-1,
        use_depthwise=False,
        spp_kernal_sizes=(5, 9, 13),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='Swish'),
        norm_eval=False))
