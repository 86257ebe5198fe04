"""timm ``focalnet_*`` state dict -> mmbackbones ``FocalNet`` names (the official ones; keys in,
keys out).

=============================================  =============================================
timm                                           mmbackbones (official)
=============================================  =============================================
``stem.proj|norm``                             ``patch_embed.proj|norm``
``layers.{i}.downsample.*`` (``i >= 1``)       ``layers.{i-1}.downsample.*``
``layers.{i}.blocks.{j}.norm1_post|norm2_post``  ``layers.{i}.blocks.{j}.norm1|norm2``
``layers.{i}.blocks.{j}.modulation.norm``      ``layers.{i}.blocks.{j}.modulation.ln``
``layers.{i}.blocks.{j}.ls1.gamma|ls2.gamma``  ``layers.{i}.blocks.{j}.gamma_1|gamma_2``
``norm``                                       ``norm{last}``
=============================================  =============================================

The classifier (``head.*``) is dropped; every other name is the same. timm runs ``f``, ``proj``
and the MLP as 1x1 convs on ``(N, C, H, W)``: their ``(out, in, 1, 1)`` weights become the
``nn.Linear`` weights ``(out, in)``; other tensors are unchanged.
"""
import re
from typing import Dict, Mapping

import torch

from .key_parts import rename_prefix

_DOWN = re.compile(r'^layers\.(\d+)\.downsample\.(.+)$')
_BLOCK = re.compile(r'^(layers\.\d+\.blocks\.\d+\.)(.+)$')
_PARTS = {'norm1_post.': 'norm1.', 'norm2_post.': 'norm2.', 'modulation.norm.':
          'modulation.ln.', 'ls1.gamma': 'gamma_1', 'ls2.gamma': 'gamma_2'}
_LINEAR = ('modulation.f.weight', 'modulation.proj.weight', 'mlp.fc1.weight', 'mlp.fc2.weight')
_SAME = ('norm1.', 'norm2.', 'modulation.f.', 'modulation.h.', 'modulation.proj.',
         'modulation.focal_layers.', 'mlp.fc1.', 'mlp.fc2.')


def is_timm_focalnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a timm FocalNet state dict (``stem.proj`` and modulation blocks)."""
    return 'stem.proj.weight' in state_dict and any(
        k.startswith('layers.0.blocks.0.modulation.f.') for k in state_dict)


def convert_timm_focalnet(state_dict: Mapping[str, torch.Tensor],
                          num_stages: int = 4) -> Dict[str, torch.Tensor]:
    """Return a new dict with our FocalNet keys (see the module table); unknown keys raise
    ``KeyError``."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        if key.startswith('stem.'):
            new = 'patch_embed.' + key[len('stem.'):]
        elif key.startswith('norm.'):
            new = f'norm{num_stages - 1}.' + key[len('norm.'):]
        elif _DOWN.match(key):
            stage, rest = _DOWN.match(key).groups()
            new = f'layers.{int(stage) - 1}.downsample.{rest}' if int(stage) > 0 else None
        elif _BLOCK.match(key):
            head, rest = _BLOCK.match(key).groups()
            new = rename_prefix(rest, _PARTS.items())
            new = head + new if new is not None else None
            if new is None and rest.startswith(_SAME):
                new = key
        else:
            new = None
        if new is None:
            raise KeyError(f'unexpected key {key!r} in a timm FocalNet state dict')
        if new.endswith(_LINEAR) and value.dim() == 4:  # timm's 1x1 convs: our nn.Linear
            value = value.flatten(1)
        out[new] = value
    return out


__all__ = ['is_timm_focalnet', 'convert_timm_focalnet']
