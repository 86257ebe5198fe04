"""The official InternImage classification state dict (OpenGVLab/InternImage, the
``internimage_*_1k_224.pth`` / ``*_22kto1k_384.pth`` files detrex's configs start from) ->
mmbackbones ``InternImage`` names (keys in, keys out), and back.

Our InternImage keeps the official (and detrex's) parameter names, so detrex's detection
checkpoints need no conversion; a classification file adds a head: ``conv_head.*`` + ``head.*``
(T/S/B/L/XL) or ``dcnv3_head_x3|x4.*``, ``clip_projector.*``, ``fc_norm.*`` + ``head.*``
(InternImage-H/G), which is dropped. The way back (``convert --to detectron2``) writes the
backbone's keys as they are (a detrex/official file without a head).
"""
import re
from typing import Dict, Mapping

import torch

_OURS = re.compile(r'^(patch_embed\.|levels\.\d+\.)')
_HEAD = re.compile(r'^(conv_head|head|dcnv3_head_x3|dcnv3_head_x4|clip_projector|fc_norm)\.')
_MARKER = 'levels.0.blocks.0.dcn.offset.weight'


def is_detrex_internimage(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for an official InternImage classification state dict (DCNv3 blocks and a head)."""
    return _MARKER in state_dict and any(_HEAD.match(k) for k in state_dict)


def convert_detrex_internimage(state_dict: Mapping[str, torch.Tensor]
                               ) -> Dict[str, torch.Tensor]:
    """The head dropped, the backbone kept; unknown keys raise ``KeyError``."""
    out = {}
    for key, value in state_dict.items():
        if _HEAD.match(key):
            continue
        if not _OURS.match(key):
            raise KeyError(f'unexpected key {key!r} in an official InternImage state dict')
        out[key] = value
    return out


def revert_detrex_internimage(state_dict: Mapping[str, torch.Tensor]
                              ) -> Dict[str, torch.Tensor]:
    """Our names are the official/detrex ones: the backbone's keys unchanged (no head)."""
    for key in state_dict:
        if not _OURS.match(key):
            raise ValueError(f'{key!r} is not an InternImage backbone key')
    return dict(state_dict)


__all__ = ['is_detrex_internimage', 'convert_detrex_internimage', 'revert_detrex_internimage']
