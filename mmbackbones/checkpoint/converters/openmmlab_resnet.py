"""mmdet / mmseg / mmcv-era ResNet checkpoints -> mmbackbones (= mmpretrain) names.

mmdet's and mmseg's ``ResNet(deep_stem=True)`` / ``ResNetV1c`` / ``ResNetV1d`` (and the
``open-mmlab://resnet{18,50,101}_v1c`` ImageNet weights they load) build the deep stem as one
``nn.Sequential`` of conv, norm, ReLU, conv, norm, ReLU, conv, norm, ReLU; mmpretrain (and we)
name each conv+norm pair:

=================================  ==========================================
mmdet / mmseg                      mmpretrain / mmbackbones
=================================  ==========================================
``stem.0|3|6.weight`` (convs)      ``stem.0|1|2.conv.weight``
``stem.1|4|7.*`` (norms)           ``stem.0|1|2.bn.*`` (``gn`` for GroupNorm)
``layer{i}.*``, plain ``conv1``    unchanged
``fc.*`` (a classifier)            dropped
=================================  ==========================================

Every other key (blocks, DCN offsets, plugins) already has the same name. Keys under
``backbone.`` (a whole detector/segmentor checkpoint) are taken from there. The norm's name is
``bn`` when the checkpoint has its running statistics, else ``gn``.
"""
import re
from typing import Dict, Mapping

import torch

_PREFIX = 'backbone.'
# mmcv-era Sequential index -> (our ConvNormAct index, 'conv' or 'norm')
_STEM = {0: (0, 'conv'), 1: (0, 'norm'), 3: (1, 'conv'), 4: (1, 'norm'), 6: (2, 'conv'),
         7: (2, 'norm')}
_STEM_KEY = re.compile(r'^stem\.(\d+)\.(.+)$')


def _backbone_keys(state_dict: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    if any(k.startswith(_PREFIX + 'stem.') for k in state_dict):
        return {k[len(_PREFIX):]: v for k, v in state_dict.items() if k.startswith(_PREFIX)}
    return state_dict


def is_openmmlab_resnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """A deep stem in the mmcv-era layout: ``stem.0.weight`` (a 4-D conv), ``stem.1.weight``,
    ``stem.3.weight``, ``stem.6.weight``, and a ``layer1`` or no ``stem.0.conv``."""
    keys = _backbone_keys(state_dict)
    conv = keys.get('stem.0.weight')
    return (getattr(conv, 'dim', lambda: 0)() == 4
            and all(f'stem.{i}.weight' in keys for i in (1, 3, 4, 6, 7))
            and 'stem.0.conv.weight' not in keys)


def convert_openmmlab_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with our deep-stem names; the classifier (``fc.*``) is dropped."""
    keys = _backbone_keys(state_dict)
    out = {}
    for key, value in keys.items():
        if key.startswith('fc.'):
            continue
        match = _STEM_KEY.match(key)
        if match:
            index, rest = int(match.group(1)), match.group(2)
            if index not in _STEM:
                raise KeyError(f'unexpected deep-stem key {key!r} (mmcv-era stems have '
                               f'stem.0/1/3/4/6/7)')
            new_index, kind = _STEM[index]
            if kind == 'norm':
                kind = 'bn' if f'stem.{index}.running_mean' in keys else 'gn'
            key = f'stem.{new_index}.{kind}.{rest}'
        out[key] = value
    return out


def revert_openmmlab_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our names -> mmdet's/mmseg's ``ResNet``/``ResNetV1c``/``ResNetV1d``: the deep stem back
    to one ``nn.Sequential`` (``stem.0|1|2.conv`` -> ``stem.0|3|6``, ``stem.0|1|2.bn|gn`` ->
    ``stem.1|4|7``); every other key (blocks, DCN, plugins) has the same name there."""
    back = {(i, kind): index for index, (i, kind) in _STEM.items()}
    out = {}
    for key, value in state_dict.items():
        match = re.match(r'^stem\.(\d+)\.(conv|bn|gn)\.(.+)$', key)
        if key.startswith('stem.') and not match:
            raise ValueError(f'mmdet/mmseg deep stems are conv, norm, ReLU x3; this checkpoint '
                             f'has {key!r}')
        if match:
            i, kind, rest = int(match.group(1)), match.group(2), match.group(3)
            index = back.get((i, 'conv' if kind == 'conv' else 'norm'))
            if index is None:
                raise ValueError(f'mmdet/mmseg deep stems have three conv+norm pairs; this '
                                 f'checkpoint has {key!r}')
            key = f'stem.{index}.{rest}'
        out[key] = value
    return out
