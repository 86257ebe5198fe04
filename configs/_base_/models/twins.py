# Twins-PCPVT-Small (mmpretrain 1.2's PCPVT, its keys and weights): 64/128/320/512 channels at
# strides 4..32, every stage out with a norm after each (as mmseg's Twins configs use them).
# Derived configs set `arch` or switch to SVT.
model = dict(
    backbone=dict(
        type='PCPVT',
        arch='small',
        in_channels=3,
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.2,
        norm_cfg=dict(type='LN'),
        norm_after_stage=False,
        frozen_stages=-1))
