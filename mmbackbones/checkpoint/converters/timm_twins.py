"""timm's ``twins_pcpvt_*`` / ``twins_svt_*`` <-> mmbackbones ``PCPVT``/``SVT`` names
(= mmpretrain's).

===================================  ==========================================
timm                                 ours / mmpretrain
===================================  ==========================================
``patch_embeds.{i}.proj.*``          ``patch_embeds.{i}.projection.*``
``patch_embeds.{i}.norm.*``          the same
``blocks.{k}.{i}.*``                 ``stages.{k}.{i}.*`` (attention names equal)
``...mlp.fc1.*`` / ``mlp.fc2.*``     ``...ffn.layers.0.0.*`` / ``ffn.layers.1.*``
``pos_block.{k}.proj.0.*``           ``position_encodings.{k}.proj.*``
``norm.*`` (after the last stage)    ``norm_after_stage{last}.*``
``head.*``                           dropped
===================================  ==========================================

Build ours with ``norm_after_stage=[False, False, False, True]``, ``qkv_bias=True`` and
``norm_cfg=dict(type='LN', eps=1e-6)`` for timm's numbers (timm's LSA pads without a mask,
mmpretrain's masks: equal outputs where the maps are multiples of the windows, as at 224 px).
"""
import re
from typing import Dict, Mapping

import torch

_NORM = re.compile(r'^norm\.(weight|bias)$')


def is_timm_twins(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return 'pos_block.0.proj.0.weight' in state_dict and 'blocks.0.0.norm1.weight' in state_dict


def convert_timm_twins(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    stages = 1 + max(int(k.split('.')[1]) for k in state_dict if k.startswith('blocks.'))
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        match = _NORM.match(key)
        if match:
            out[f'norm_after_stage{stages - 1}.{match.group(1)}'] = value
            continue
        new = re.sub(r'^patch_embeds\.(\d+)\.proj\.', r'patch_embeds.\1.projection.', key)
        new = re.sub(r'^pos_block\.(\d+)\.proj\.0\.', r'position_encodings.\1.proj.', new)
        new = re.sub(r'^blocks\.', 'stages.', new)
        new = new.replace('.mlp.fc1.', '.ffn.layers.0.0.').replace('.mlp.fc2.', '.ffn.layers.1.')
        if new == key and not key.startswith('patch_embeds.'):
            raise KeyError(f'unexpected key {key!r} in a timm Twins state dict')
        out[new] = value
    return out


def revert_timm_twins(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    stages = 1 + max(int(k.split('.')[1]) for k in state_dict if k.startswith('stages.'))
    out = {}
    for key, value in state_dict.items():
        match = re.match(r'^norm_after_stage(\d+)\.(weight|bias)$', key)
        if match:
            if int(match.group(1)) != stages - 1:
                raise ValueError(f'{key!r}: timm Twins has a norm after the last stage only')
            out[f'norm.{match.group(2)}'] = value
            continue
        new = re.sub(r'^patch_embeds\.(\d+)\.projection\.', r'patch_embeds.\1.proj.', key)
        new = re.sub(r'^position_encodings\.(\d+)\.proj\.', r'pos_block.\1.proj.0.', new)
        new = re.sub(r'^stages\.', 'blocks.', new)
        out[new.replace('.ffn.layers.0.0.', '.mlp.fc1.').replace('.ffn.layers.1.', '.mlp.fc2.')] \
            = value
    return out
