"""The official FocalNet classification state dict (microsoft/FocalNet) -> mmbackbones
``FocalNet`` names (keys in, keys out).

Our FocalNet keeps the official (and detrex's) parameter names, so detrex's detection
checkpoints need no conversion; a classification file differs only in its final ``norm``
(``norm{last}`` here, the output norm of the last stage) and its classifier ``head`` (dropped).
"""
import re
from typing import Dict, Mapping

import torch

_OURS = re.compile(r'^(patch_embed\.|layers\.\d+\.|norm\d+\.)')


def is_detrex_focalnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for an official FocalNet classification state dict (modulation blocks, a final
    ``norm`` and no per-stage output norms)."""
    return any(k.startswith('layers.0.blocks.0.modulation.f.') for k in state_dict) and \
        'norm.weight' in state_dict and not any(re.match(r'^norm\d+\.', k) for k in state_dict)


def convert_detrex_focalnet(state_dict: Mapping[str, torch.Tensor],
                            num_stages: int = 4) -> Dict[str, torch.Tensor]:
    """``norm.*`` -> ``norm{num_stages - 1}.*``, ``head.*`` dropped; unknown keys raise
    ``KeyError``."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        if key.startswith('norm.'):
            out[f'norm{num_stages - 1}.' + key[len('norm.'):]] = value
        elif _OURS.match(key):
            out[key] = value
        else:
            raise KeyError(f'unexpected key {key!r} in an official FocalNet state dict')
    return out


__all__ = ['is_detrex_focalnet', 'convert_detrex_focalnet']
