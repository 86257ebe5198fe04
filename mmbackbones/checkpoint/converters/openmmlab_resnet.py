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
``layer{i}.{j}.downsample.1|2``    ``downsample.0|1`` where our block has no
(avg down at stride 1: pool, conv,  pool (mmpretrain's ResNetV1d/ResNeSt
norm)                              ``layer1``), else unchanged
=================================  ==========================================

mmdet's/mmseg's ``ResLayer(avg_down=True)`` keeps its (identity) pool where the stride is 1;
mmpretrain's drops it there (Res2Net keeps it in every library). With the model's keys
(``target``) each block follows the model; without them ``layer1`` shifts, except in Res2Net
checkpoints (``convs.0``).

Every other key (blocks, DCN offsets, plugins) already has the same name. Keys under
``backbone.`` (a whole detector/segmentor checkpoint) are taken from there. The norm's name is
``bn`` when the checkpoint has its running statistics, else ``gn``.
"""
import re
from typing import Dict, Mapping, Optional, Sequence

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


_DOWNSAMPLE = re.compile(r'^(layer\d+\.\d+\.downsample\.)([012])\.(.+)$')


def _shift_down(block: str, keys: Mapping, target: Optional[Mapping[str, Sequence[int]]]) -> bool:
    """Whether ``block`` (``layer{i}.{j}.downsample.``) is (pool, conv, norm) here and our
    model has (conv, norm) there."""
    if block + '2.weight' not in keys and block + '2.running_mean' not in keys:
        return False
    if target is not None:
        return len(tuple(target.get(block + '0.weight', ()))) == 4
    return block.startswith('layer1.') and not any('.convs.0.' in k for k in keys)


def convert_openmmlab_resnet(state_dict: Mapping[str, torch.Tensor],
                             target: Optional[Mapping[str, Sequence[int]]] = None
                             ) -> Dict[str, torch.Tensor]:
    """A new dict with our deep-stem names (and shortcut indices, see the module docstring);
    the classifier (``fc.*``) is dropped."""
    keys = _backbone_keys(state_dict)
    out = {}
    for key, value in keys.items():
        if key.startswith('fc.'):
            continue
        down = _DOWNSAMPLE.match(key)
        if down and down.group(2) != '0' and _shift_down(down.group(1), keys, target):
            key = f'{down.group(1)}{int(down.group(2)) - 1}.{down.group(3)}'
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
    ``stem.1|4|7``), an avg-down shortcut without its stride-1 pool back to ``downsample.1|2``;
    every other key (blocks, DCN, plugins) has the same name there."""
    back = {(i, kind): index for index, (i, kind) in _STEM.items()}
    avg = any(re.match(r'^layer\d+\.\d+\.downsample\.2\.', k) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        down = _DOWNSAMPLE.match(key) if avg else None
        if down and f'{down.group(1)}2.weight' not in state_dict:  # no pool here: theirs has
            key = f'{down.group(1)}{int(down.group(2)) + 1}.{down.group(3)}'
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
