"""mmdet 3.3's ``MobileNetV2`` names <-> mmbackbones (= mmpretrain, = mmseg) names, both ways.

mmdet builds MobileNetV2's blocks from its own ``InvertedResidual``, whose convs are named;
mmpretrain's and mmseg's block holds them in a ``conv`` Sequential. Same tensors, same order:

==========================================  ==============================================
mmdet                                       mmpretrain / mmseg / mmbackbones
==========================================  ==============================================
``layer{i}.{j}.expand_conv.*``              ``layer{i}.{j}.conv.0.*``
``layer{i}.{j}.depthwise_conv.*``           ``layer{i}.{j}.conv.1.*`` (``conv.0`` without an
                                            expand conv: ``layer1``)
``layer{i}.{j}.linear_conv.*``              ``layer{i}.{j}.conv.2.*`` (``conv.1``)
``conv1.*``, ``conv2.*``                    unchanged
==========================================  ==============================================
"""
import re
from typing import Dict, Mapping

import torch

_MMDET = re.compile(r'^(layer\d+\.\d+)\.(expand_conv|depthwise_conv|linear_conv)\.(.+)$')
_OURS = re.compile(r'^(layer\d+\.\d+)\.conv\.(\d)\.(.+)$')


def is_mmdet_mobilenet_v2(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """mmdet's layout: ``conv1.conv.weight`` and ``layer{i}.{j}.depthwise_conv`` keys."""
    return 'conv1.conv.weight' in state_dict and any(
        _MMDET.match(k) for k in state_dict)


def convert_mmdet_mobilenet_v2(state_dict: Mapping[str, torch.Tensor]
                               ) -> Dict[str, torch.Tensor]:
    """A new dict in mmpretrain's names (see the module docstring)."""
    expands = {m.group(1) for m in map(_MMDET.match, state_dict) if m and
               m.group(2) == 'expand_conv'}
    out = {}
    for key, value in state_dict.items():
        match = _MMDET.match(key)
        if match is None:
            if not key.startswith(('conv1.', 'conv2.')):
                raise KeyError(f"unexpected key {key!r} in an mmdet MobileNetV2 state dict")
            out[key] = value
            continue
        block, part, rest = match.groups()
        index = {'expand_conv': 0, 'depthwise_conv': 1, 'linear_conv': 2}[part]
        out[f'{block}.conv.{index - (block not in expands)}.{rest}'] = value
    return out


def revert_mmdet_mobilenet_v2(state_dict: Mapping[str, torch.Tensor]
                              ) -> Dict[str, torch.Tensor]:
    """Our (mmpretrain's) MobileNetV2 names -> mmdet's."""
    three = {m.group(1) for m in map(_OURS.match, state_dict) if m and m.group(2) == '2'}
    out = {}
    for key, value in state_dict.items():
        match = _OURS.match(key)
        if match is None:
            if not key.startswith(('conv1.', 'conv2.')):
                raise ValueError(f"mmdet's MobileNetV2 has no place for {key!r}")
            out[key] = value
            continue
        block, index, rest = match.groups()
        names = ('expand_conv', 'depthwise_conv', 'linear_conv') if block in three else \
            ('depthwise_conv', 'linear_conv')
        out[f'{block}.{names[int(index)]}.{rest}'] = value
    return out
