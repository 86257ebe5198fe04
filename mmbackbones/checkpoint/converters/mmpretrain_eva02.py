"""mmpretrain 1.2 ``ViTEVA02`` state dict -> our ``VisionTransformer`` (what ``mmcls.ViTEVA02``
builds).

=============================================  ==========================================
mmpretrain ``ViTEVA02``                         mmbackbones
=============================================  ==========================================
``layers.{i}.norm1|norm2.*``                   ``layers.{i}.ln1|ln2.*``
``layers.{i}.mlp.w12|norm|w3.*``               ``layers.{i}.ffn.w12|norm|w3.*``
``rope.freqs_cos|sin``, ``layers.{i}.attn.rope.*``  dropped (computed, not learned)
everything else (``attn.qkv``, ``attn.proj``,   unchanged
``cls_token``, ``pos_embed``, ``ln1``, ...)
=============================================  ==========================================
"""
import re
from typing import Dict, Mapping

import torch

_LAYER = re.compile(r'^((?:.*\.)?layers\.\d+\.)(norm1|norm2|mlp)\.(.*)$')
_OURS = re.compile(r'^((?:.*\.)?layers\.\d+\.)(ln1|ln2|ffn)\.(.*)$')
_NAMES = {'norm1': 'ln1', 'norm2': 'ln2', 'mlp': 'ffn'}


def is_mmpretrain_eva02(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """mmpretrain's EVA-02 layers: ``layers.N.mlp.w12`` next to ``layers.N.norm1``."""
    return any(re.search(r'(^|\.)layers\.\d+\.mlp\.w12\.weight$', k) for k in state_dict) and \
        any(re.search(r'(^|\.)layers\.\d+\.norm1\.weight$', k) for k in state_dict)


def convert_mmpretrain_eva02(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict in our names (module table)."""
    out = {}
    for key, value in state_dict.items():
        if re.search(r'(^|\.)rope\.freqs_(cos|sin)$', key):
            continue
        m = _LAYER.match(key)
        out[f'{m.group(1)}{_NAMES[m.group(2)]}.{m.group(3)}' if m else key] = value
    return out


def revert_mmpretrain_eva02(state_dict: Mapping[str, torch.Tensor]
                            ) -> Dict[str, torch.Tensor]:
    """Our names -> mmpretrain's ``ViTEVA02`` (its rope buffers are computed at its build)."""
    back = {v: k for k, v in _NAMES.items()}
    out = {}
    for key, value in state_dict.items():
        m = _OURS.match(key)
        out[f'{m.group(1)}{back[m.group(2)]}.{m.group(3)}' if m else key] = value
    return out
