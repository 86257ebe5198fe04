"""timm ``resnet*`` state dict -> mmbackbones ``ResNet`` / ``ResNetV1c`` / ``ResNetV1d`` names.

=====================================  ==========================================
timm                                   mmpretrain / mmbackbones
=====================================  ==========================================
``conv1`` / ``bn1`` (plain stem)       ``conv1`` / ``bn1`` (unchanged)
``conv1.0|3|6`` (deep stem convs)      ``stem.0|1|2.conv``
``conv1.1|4`` and ``bn1`` (its norms)  ``stem.0|1.bn`` and ``stem.2.bn``
``layer{i}.{j}.*``                     unchanged (``downsample.1|2`` with avg_down too)
``fc.*`` (classifier)                  dropped
=====================================  ==========================================

Variants with blocks we do not have (SE, attention, ...) keep their keys and show up as
unexpected in the load report.
"""
import re
from typing import Dict, Mapping

import torch

_DEEP_STEM = {'conv1.0.': 'stem.0.conv.', 'conv1.1.': 'stem.0.bn.',
              'conv1.3.': 'stem.1.conv.', 'conv1.4.': 'stem.1.bn.',
              'conv1.6.': 'stem.2.conv.', 'bn1.': 'stem.2.bn.'}


def is_timm_resnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm ResNet layout: ``layer1.0.conv1.weight`` with a plain or deep (``conv1.0``) stem."""
    return 'layer1.0.conv1.weight' in state_dict and (
        'conv1.weight' in state_dict or 'conv1.0.weight' in state_dict)


def convert_timm_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain names; the classifier is dropped."""
    deep = 'conv1.0.weight' in state_dict
    out = {}
    for key, value in state_dict.items():
        if key.startswith('fc.'):
            continue
        if deep and not re.match(r'^layer\d', key):
            for src, dst in _DEEP_STEM.items():
                if key.startswith(src):
                    key = dst + key[len(src):]
                    break
        out[key] = value
    return out
