"""timm ``resnet*`` state dict -> mmbackbones ``ResNet`` / ``ResNetV1c`` / ``ResNetV1d`` names.

=====================================  ==========================================
timm                                   mmpretrain / mmbackbones
=====================================  ==========================================
``conv1`` / ``bn1`` (plain stem)       ``conv1`` / ``bn1`` (unchanged)
``conv1.0|3|6`` (deep stem convs)      ``stem.0|1|2.conv``
``conv1.1|4`` and ``bn1`` (its norms)  ``stem.0|1.bn`` and ``stem.2.bn``
``layer{i}.{j}.*``                     unchanged
``layer{i}.{j}.downsample.1|2``        ``downsample.0|1`` where our block has no
(avg down: pool, conv, norm)           pool (stride 1), else unchanged
``fc.*`` (classifier)                  dropped
=====================================  ==========================================

Variants with blocks we do not have (SE, attention, ...) keep their keys and show up as
unexpected in the load report. timm's avg-down shortcut is always (pool or Identity, conv,
norm); mmpretrain's drops the pool where the stride is 1: with the model's keys (``target``) each
block follows the model, without them ``layer1`` (stride 1 in both) does.

``revert_timm_resnet`` is the way back (``convert --to timm``); keys timm's ResNet has no place
for (GroupNorm stems, DCN offsets, plugins) are refused.
"""
import re
from typing import Dict, Mapping, Optional, Sequence

import torch

from .key_parts import rename_prefix

_DEEP_STEM = {'conv1.0.': 'stem.0.conv.', 'conv1.1.': 'stem.0.bn.',
              'conv1.3.': 'stem.1.conv.', 'conv1.4.': 'stem.1.bn.',
              'conv1.6.': 'stem.2.conv.', 'bn1.': 'stem.2.bn.'}
_DOWNSAMPLE = re.compile(r'^(layer\d+\.\d+\.downsample\.)(\d)\.(.+)$')
_OURS = re.compile(r'^(conv1|bn1|stem\.[012]\.(conv|bn)|layer\d+\.\d+\.(conv[123]|bn[123]|'
                   r'downsample\.[012]))\.(weight|bias|running_mean|running_var|'
                   r'num_batches_tracked)$')


def is_timm_resnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm ResNet layout: ``layer1.0.conv1.weight`` with a plain or deep (``conv1.0``) stem."""
    return 'layer1.0.conv1.weight' in state_dict and (
        'conv1.weight' in state_dict or 'conv1.0.weight' in state_dict) and (
        'layer1.0.conv2.fc1.weight' not in state_dict)  # ResNeSt: timm_resnest's


def _avg_down(state_dict: Mapping) -> bool:
    return any(re.match(r'^layer\d+\.\d+\.downsample\.2\.', k) for k in state_dict)


def _without_pool(block: str, target: Optional[Mapping[str, Sequence[int]]]) -> bool:
    """Whether our ``block`` (``layer{i}.{j}.downsample.``) has no pool: conv at index 0."""
    if target is None:
        return block.startswith('layer1.')
    return len(tuple(target.get(block + '0.weight', ()))) == 4


def convert_timm_resnet(state_dict: Mapping[str, torch.Tensor],
                        target: Optional[Mapping[str, Sequence[int]]] = None
                        ) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain names; the classifier is dropped."""
    deep = 'conv1.0.weight' in state_dict
    avg = _avg_down(state_dict)
    out = {}
    for key, value in state_dict.items():
        if key.startswith('fc.'):
            continue
        if deep and not re.match(r'^layer\d', key):
            key = rename_prefix(key, _DEEP_STEM.items(), default=key)
        match = _DOWNSAMPLE.match(key) if avg else None
        if match and match.group(2) in '12' and _without_pool(match.group(1), target):
            key = f'{match.group(1)}{int(match.group(2)) - 1}.{match.group(3)}'
        out[key] = value
    return out


def revert_timm_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``ResNet``/``ResNetV1c``/``ResNetV1d``/``ResNeXt`` names -> timm's ``resnet*``
    (build it with ``num_classes=0``)."""
    other = [k for k in state_dict if not _OURS.match(k)]
    if other:
        raise ValueError(f"timm's ResNet has no place for {len(other)} key(s) of this "
                         f"checkpoint (GroupNorm stems, DCN, plugins, ...): "
                         f"{', '.join(other[:5])}")
    stem = {dst: src for src, dst in _DEEP_STEM.items()}
    avg = _avg_down(state_dict)
    out = {}
    for key, value in state_dict.items():
        key = rename_prefix(key, stem.items(), default=key)
        match = _DOWNSAMPLE.match(key) if avg else None
        if match and f'{match.group(1)}2.weight' not in state_dict:
            key = f'{match.group(1)}{int(match.group(2)) + 1}.{match.group(3)}'
        out[key] = value
    return out
