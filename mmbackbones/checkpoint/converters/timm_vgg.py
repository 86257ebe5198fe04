"""timm ``vgg11``..``vgg19(_bn)`` state dict <-> mmbackbones/mmpretrain ``VGG`` names.

timm's features are torchvision's flat layout (:mod:`.torchvision_vgg` maps the indices). Its
head is mmpretrain's classifier written as convolutions: ``pre_logits.fc1`` (a 7x7 conv, 512 ->
4096) and ``pre_logits.fc2`` (1x1, 4096 -> 4096) are ``classifier.0`` / ``classifier.3``
reshaped (the flattening order of a ``(512, 7, 7)`` map is the conv kernel's), ``head.fc`` is
``classifier.6``. So a timm VGG loads whole into ``VGG(num_classes=1000)``, and its features
into any VGG (the classifier is then outside the backbone and ignored).
"""
import re
from typing import Dict, Mapping

import torch

from .torchvision_vgg import _flat_layout, flat_to_ours, ours_to_flat

_HEAD = {'pre_logits.fc1': 'classifier.0', 'pre_logits.fc2': 'classifier.3',
         'head.fc': 'classifier.6'}


def is_timm_vgg(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """A flat VGG features layout with timm's ``pre_logits.fc1`` ConvMlp."""
    return _flat_layout(state_dict) is not None and 'pre_logits.fc1.weight' in state_dict


def convert_timm_vgg(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict in mmpretrain ``VGG`` names, the head as ``classifier.*`` (conv kernels
    flattened to linear weights); another key raises ``KeyError`` naming it."""
    out = flat_to_ours(state_dict)
    for key, value in state_dict.items():
        if key.startswith('features.'):
            continue
        match = re.match(r'^(pre_logits\.fc[12]|head\.fc)\.(weight|bias)$', key)
        if not match:
            raise KeyError(f'unexpected key {key!r} in a timm VGG state dict (expected '
                           f'features.*, pre_logits.fc1/fc2 and head.fc)')
        if match.group(2) == 'weight' and value.dim() == 4:
            value = value.reshape(value.shape[0], -1)
        out[f'{_HEAD[match.group(1)]}.{match.group(2)}'] = value
    return dict(out)


def revert_timm_vgg(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our names -> timm's (a classifier back to ``pre_logits`` convs and ``head.fc``)."""
    out = dict(ours_to_flat(state_dict))
    for theirs, ours in _HEAD.items():
        for leaf in ('weight', 'bias'):
            value = state_dict.get(f'{ours}.{leaf}')
            if value is None:
                continue
            if leaf == 'weight' and theirs == 'pre_logits.fc1':
                value = value.reshape(value.shape[0], 512, 7, 7)
            elif leaf == 'weight' and theirs == 'pre_logits.fc2':
                value = value.reshape(value.shape[0], value.shape[1], 1, 1)
            out[f'{theirs}.{leaf}'] = value
    return out
