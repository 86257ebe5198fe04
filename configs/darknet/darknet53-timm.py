# timm's darknet53 (darknet53.c2ns_in1k weights): LeakyReLU slope 0.01, all five stages out
_base_ = ['../_base_/models/darknet53.py']
model = dict(backbone=dict(act_cfg=dict(type='LeakyReLU', negative_slope=0.01),
                           out_indices=(1, 2, 3, 4, 5), norm_eval=False))
