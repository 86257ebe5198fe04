"""mmseg 1.2's Twins ``PCPVT``/``SVT`` <-> mmbackbones ``PCPVT``/``SVT`` names (= mmpretrain's).

=============================================  ==========================================
mmseg                                          ours / mmpretrain
=============================================  ==========================================
``layers.{k}.{i}.*``                           ``stages.{k}.{i}.*``
``...attn.attn.in_proj_weight|bias`` (GSA)     ``...attn.q.*`` (first third of the rows),
                                               ``...attn.kv.*`` (the rest)
``...attn.attn.out_proj.*`` (GSA)              ``...attn.proj.*``
``norm_list.{i}.*``                            ``norm_after_stage{i}.*``
``patch_embeds.*``, ``position_encodings.*``,  the same names
LSA's ``attn.qkv``/``attn.proj``, ``ffn.*``
=============================================  ==========================================
"""
import re
from typing import Dict, Mapping

import torch

_IN_PROJ = re.compile(r'^(stages\.\d+\.\d+\.attn\.)attn\.in_proj_(weight|bias)$')


def is_mmseg_twins(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return 'position_encodings.0.proj.weight' in state_dict and \
        any(k.startswith('layers.0.0.') for k in state_dict)


def convert_mmseg_twins(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        if key.startswith('layers.'):
            key = 'stages.' + key[len('layers.'):]
        elif key.startswith('norm_list.'):
            index, rest = key[len('norm_list.'):].split('.', 1)
            key = f'norm_after_stage{index}.{rest}'
        match = _IN_PROJ.match(key)
        if match:
            c = value.shape[0] // 3
            out[f'{match.group(1)}q.{match.group(2)}'] = value[:c]
            out[f'{match.group(1)}kv.{match.group(2)}'] = value[c:]
            continue
        out[key.replace('.attn.attn.out_proj.', '.attn.proj.')] = value
    return out


def revert_mmseg_twins(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out, pending = {}, {}
    for key, value in state_dict.items():
        match = re.match(r'^norm_after_stage(\d+)\.(.+)$', key)
        if match:
            out[f'norm_list.{match.group(1)}.{match.group(2)}'] = value
            continue
        if key.startswith('stages.'):
            key = 'layers.' + key[len('stages.'):]
        found = re.match(r'^(layers\.\d+\.\d+\.attn\.)(q|kv)\.(weight|bias)$', key)
        if found:
            pending.setdefault((found.group(1), found.group(3)), {})[found.group(2)] = value
            continue
        if key.endswith(('.attn.proj.weight', '.attn.proj.bias')) and \
                key.rsplit('.', 2)[0] + '.q.weight' in {
                    'layers.' + k[len('stages.'):] for k in state_dict if k.startswith('stages.')}:
            key = key.replace('.attn.proj.', '.attn.attn.out_proj.')
        out[key] = value
    for (prefix, kind), parts in pending.items():
        out[f'{prefix}attn.in_proj_{kind}'] = torch.cat([parts['q'], parts['kv']])
    return out
