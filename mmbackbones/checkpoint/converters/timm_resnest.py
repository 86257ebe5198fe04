"""timm ``resnest*`` state dict -> mmbackbones/mmpretrain ``ResNeSt`` names, and back.

timm's ``ResNestBottleneck`` names the block as mmpretrain does (``conv1``, ``bn1``,
``conv2.conv|bn0|fc1|bn1|fc2``, ``conv3``, ``bn3``); what converts is timm's ResNet frame,
exactly as for timm's ``resnet*d`` (``timm_resnet``): the deep stem ``conv1.0|1|3|4|6`` +
``bn1`` -> ``stem.{0,1,2}.conv|bn``, the avg-down shortcut ``downsample.1|2`` -> ``0|1`` where our
block has no pool (stride 1), and the classifier ``fc.*`` dropped.

timm variants and ours: ``resnest14d``/``26d``/``50d`` = ``ResNeSt(depth=14|26|50)``,
``resnest101e``/``200e``/``269e`` = ``ResNeSt(depth=..., stem_channels=128)``.
``resnest50d_4s2x40d`` and ``resnest50d_1s4x24d`` pool *before* the split-attention conv
(timm's ``avd_first=True``), which no OpenMMLab ResNeSt does: :data:`NO_COUNTERPART`.
"""
import re
from typing import Dict, Mapping, Optional, Sequence

import torch

from .key_parts import rename_prefix

from .timm_resnet import _DEEP_STEM, _DOWNSAMPLE, convert_timm_resnet

# timm name -> ResNeSt arguments
TIMM_RESNEST_ARCHS = {
    'resnest14d': dict(depth=14), 'resnest26d': dict(depth=26), 'resnest50d': dict(depth=50),
    'resnest101e': dict(depth=101, stem_channels=128),
    'resnest200e': dict(depth=200, stem_channels=128),
    'resnest269e': dict(depth=269, stem_channels=128),
}
NO_COUNTERPART = {
    name: ('timm builds it with avd_first=True (the stride pool before the split-attention '
           'conv); mmpretrain\'s/mmdet\'s ResNeSt pools after it, so no ResNeSt here computes it')
    for name in ('resnest50d_4s2x40d', 'resnest50d_1s4x24d')}
_SPLAT = re.compile(r'^layer\d+\.\d+\.conv2\.(conv|bn0|fc1|bn1|fc2)\.')


def is_timm_resnest(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm's ResNeSt: a deep stem (``conv1.0.weight``) and split-attention blocks."""
    return 'conv1.0.weight' in state_dict and 'layer1.0.conv2.fc1.weight' in state_dict


def convert_timm_resnest(state_dict: Mapping[str, torch.Tensor],
                         target: Optional[Mapping[str, Sequence[int]]] = None
                         ) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain names; the classifier is dropped. A ``ValueError`` for timm's
    radix-1/4 variants (:data:`NO_COUNTERPART`): their keys fit ``ResNeSt(radix=...)`` but not
    their computation."""
    fc2 = state_dict.get('layer1.0.conv2.fc2.weight')
    conv3 = state_dict.get('layer1.0.conv3.weight')
    if fc2 is not None and conv3 is not None and fc2.shape[0] != 2 * conv3.shape[1]:
        radix = fc2.shape[0] // conv3.shape[1]
        raise ValueError(f"timm ResNeSt with radix={radix} (resnest50d_4s2x40d or "
                         f"resnest50d_1s4x24d): {NO_COUNTERPART['resnest50d_4s2x40d']}")
    return convert_timm_resnet(state_dict, target=target)


def revert_timm_resnest(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``ResNeSt`` names -> timm's ``resnest*`` (build it with ``num_classes=0``)."""
    if 'stem.0.conv.weight' not in state_dict:
        raise ValueError("timm's ResNeSt has a deep stem; this checkpoint has no "
                         "stem.0.conv.weight")
    stem = {dst: src for src, dst in _DEEP_STEM.items()}
    avg = any(re.match(r'^layer\d+\.\d+\.downsample\.2\.', k) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if not (key.startswith(('stem.', 'layer')) or key in ('conv1.weight', )):
            raise ValueError(f"timm's ResNeSt has no place for {key!r}")
        key = rename_prefix(key, stem.items(), default=key)
        match = _DOWNSAMPLE.match(key) if avg else None
        if match and f'{match.group(1)}2.weight' not in state_dict:
            key = f'{match.group(1)}{int(match.group(2)) + 1}.{match.group(3)}'
        out[key] = value
    return out
