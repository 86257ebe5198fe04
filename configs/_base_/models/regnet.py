# RegNetX-400MF: 4 stages, 32/64/160/384 channels at strides 4..32. Derived configs set `arch`.
model = dict(
    backbone=dict(
        type='RegNet',
        arch='regnetx_400mf',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'))
