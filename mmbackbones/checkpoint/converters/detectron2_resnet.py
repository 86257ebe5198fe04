"""detectron2 ResNet weights (``.pkl`` of numpy arrays) -> mmbackbones ``ResNet`` names.

==========================================  ===============================
detectron2                                  mmpretrain / mmbackbones
==========================================  ===============================
``stem.conv1.weight``                       ``conv1.weight``
``stem.conv1.norm.*``                       ``bn1.*``
``res{k}.{j}.conv{i}.weight``               ``layer{k-1}.{j}.conv{i}.weight``
``res{k}.{j}.conv{i}.norm.*``               ``layer{k-1}.{j}.bn{i}.*``
``res{k}.{j}.shortcut.weight``              ``layer{k-1}.{j}.downsample.0.weight``
``res{k}.{j}.shortcut.norm.*``              ``layer{k-1}.{j}.downsample.1.*``
``stem.fc.*`` / ``linear.*`` (classifier)   dropped
==========================================  ===============================

Keys of a whole detectron2 model (``backbone.bottom_up.res2...``) are taken from under
``backbone.bottom_up.``. Weights converted from MSRA/caffe2 put the stride on the 1x1 conv: build
the ResNet with ``style='caffe'`` for those (the names are the same, the keys cannot tell).
"""
import re
from typing import Dict, Mapping

import torch

BOTTOM_UP = 'backbone.bottom_up.'
_BLOCK = re.compile(r'^res(\d)\.(\d+)\.(conv\d|shortcut)\.(norm\.)?(.+)$')


def is_detectron2_resnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """``stem.conv1.weight`` / ``res2.0.conv1.weight`` (optionally under backbone.bottom_up.)."""
    return any(k in state_dict for k in ('stem.conv1.weight', 'res2.0.conv1.weight',
                                         BOTTOM_UP + 'stem.conv1.weight'))


def convert_detectron2_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain names (numpy arrays become tensors without a copy)."""
    if any(k.startswith(BOTTOM_UP) for k in state_dict):
        state_dict = {k[len(BOTTOM_UP):]: v for k, v in state_dict.items()
                      if k.startswith(BOTTOM_UP)}
    out = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        if key.startswith(('stem.fc.', 'linear.', 'fc.')):
            continue
        if key.startswith('stem.conv1.norm.'):
            new = 'bn1.' + key[len('stem.conv1.norm.'):]
        elif key.startswith('stem.conv1.'):
            new = 'conv1.' + key[len('stem.conv1.'):]
        else:
            m = _BLOCK.match(key)
            if m is None:
                out[key] = value  # reported as unexpected by the loader
                continue
            stage, block, layer, norm, leaf = m.groups()
            if layer == 'shortcut':
                layer = 'downsample.1' if norm else 'downsample.0'
            elif norm:
                layer = 'bn' + layer[len('conv'):]
            new = f'layer{int(stage) - 1}.{block}.{layer}.{leaf}'
        out[new] = value
    return out
