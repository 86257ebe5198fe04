"""detectron2 ResNet weights -> mmbackbones ``ResNet`` (mmpretrain) names, and the renames the
detectron2-style ResNet (``integrations.detectron2``) uses to load the other layouts.

Per key, detectron2 -> mmpretrain / mmbackbones <- caffe2 (MSRA, Detectron1):

* ``stem.conv1.weight`` -> ``conv1.weight`` <- ``conv1_w``
* ``stem.conv1.norm.{weight,bias,running_mean,running_var}`` -> ``bn1.*``
  <- ``res_conv1_bn_{s,b,rm,riv}``
* ``res{k}.{j}.conv{i}.weight`` -> ``layer{k-1}.{j}.conv{i}.weight``
  <- ``res{k}_{j}_branch2{a,b,c}_w``
* ``res{k}.{j}.conv{i}.norm.*`` -> ``layer{k-1}.{j}.bn{i}.*`` <- ``res{k}_{j}_branch2{a,b,c}_bn_*``
* ``res{k}.{j}.shortcut.weight`` -> ``layer{k-1}.{j}.downsample.0.weight``
  <- ``res{k}_{j}_branch1_w``
* ``res{k}.{j}.shortcut.norm.*`` -> ``layer{k-1}.{j}.downsample.1.*`` <- ``res{k}_{j}_branch1_bn_*``
* classifiers (``stem.fc.*``, ``linear.*``, ``fc1000_*``) and ``*_momentum`` blobs: dropped.

Keys of a whole detectron2 model (``backbone.bottom_up.res2...``) are taken from under
``backbone.bottom_up.``. Caffe2 files keep only the affine part of their norms (``_s``, ``_b``):
the running statistics are then 0 and 1, as detectron2's ``FrozenBatchNorm2d`` fills them.
MSRA weights put the stride on the 1x1 conv: build the ResNet with ``style='caffe'``
(``stride_in_1x1=True``) for those (the keys cannot tell).
"""
import re
from typing import Dict, Mapping, Optional

import torch

BOTTOM_UP = 'backbone.bottom_up.'
_BLOCK = re.compile(r'^res(\d)\.(\d+)\.(conv\d|shortcut)\.(norm\.)?(.+)$')
_C2_BLOCK = re.compile(r'^res(\d)_(\d+)_branch(1|2a|2b|2c)_(w|b|bn_s|bn_b|bn_rm|bn_riv)$')
_C2_STEM = re.compile(r'^(?:conv1_(w|b)|res_conv1_bn_(s|b|rm|riv))$')
_C2_LEAF = {'w': 'weight', 'b': 'bias', 's': 'norm.weight', 'bn_s': 'norm.weight',
            'bn_b': 'norm.bias', 'rm': 'norm.running_mean', 'bn_rm': 'norm.running_mean',
            'riv': 'norm.running_var', 'bn_riv': 'norm.running_var'}
_C2_LAYER = {'1': 'shortcut', '2a': 'conv1', '2b': 'conv2', '2c': 'conv3'}
_MM_BLOCK = re.compile(r'^layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])\.(.+)$')


def is_caffe2_resnet(state_dict: Mapping) -> bool:
    """caffe2 (MSRA / Detectron1) names: ``conv1_w``, ``res2_0_branch2a_w``, ..."""
    return 'conv1_w' in state_dict or 'res2_0_branch2a_w' in state_dict


def is_detectron2_resnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """``stem.conv1.weight`` / ``res2.0.conv1.weight`` (optionally under backbone.bottom_up.),
    or the caffe2 names of the same network."""
    return any(k in state_dict for k in ('stem.conv1.weight', 'res2.0.conv1.weight',
                                         BOTTOM_UP + 'stem.conv1.weight')) or \
        is_caffe2_resnet(state_dict)


def rename_caffe2_to_d2(state_dict: Mapping) -> Dict[str, Optional[str]]:
    """``{caffe2 key: detectron2 key or None (dropped)}``; unknown keys keep their name."""
    out = {}
    for key in state_dict:
        stem, block = _C2_STEM.match(key), _C2_BLOCK.match(key)
        if key.endswith('_momentum') or key.startswith(('fc1000_', 'pred_')):
            out[key] = None
        elif stem:
            leaf = stem.group(1) or 'bn_' + stem.group(2)  # conv1_b: conv bias; _bn_b: norm
            out[key] = 'stem.conv1.' + _C2_LEAF[leaf]
        elif block:
            stage, index, branch, leaf = block.groups()
            out[key] = f'res{stage}.{index}.{_C2_LAYER[branch]}.{_C2_LEAF[leaf]}'
        else:
            out[key] = key
    return out


def rename_mmpretrain_to_d2(state_dict: Mapping) -> Dict[str, Optional[str]]:
    """``{mmpretrain/torchvision key: detectron2 key or None (the classifier)}``."""
    out = {}
    for key in state_dict:
        block = _MM_BLOCK.match(key)
        if key.startswith(('fc.', 'head.')):
            out[key] = None
        elif key.startswith('conv1.'):
            out[key] = 'stem.conv1.' + key[len('conv1.'):]
        elif key.startswith('bn1.'):
            out[key] = 'stem.conv1.norm.' + key[len('bn1.'):]
        elif block:
            stage, index, layer, leaf = block.groups()
            layer = {'downsample.0': 'shortcut', 'downsample.1': 'shortcut.norm'}.get(
                layer, layer.replace('bn', 'conv') + '.norm' if layer.startswith('bn') else layer)
            out[key] = f'res{int(stage) + 1}.{index}.{layer}.{leaf}'
        else:
            out[key] = key
    return out


def caffe2_to_detectron2(state_dict: Mapping) -> Dict[str, torch.Tensor]:
    """A caffe2-named dict in detectron2 names, with running statistics 0/1 added to the norms
    that have only their affine part."""
    out = {}
    for old, new in rename_caffe2_to_d2(state_dict).items():
        if new is not None:
            value = state_dict[old]
            out[new] = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    for key in [k for k in out if k.endswith('.norm.weight')]:
        base = key[:-len('weight')]
        out.setdefault(base + 'running_mean', torch.zeros_like(out[key]))
        out.setdefault(base + 'running_var', torch.ones_like(out[key]))
    return out


def convert_detectron2_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain names (numpy arrays become tensors without a copy)."""
    if is_caffe2_resnet(state_dict):
        state_dict = caffe2_to_detectron2(state_dict)
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


_D2_KEY = re.compile(r'^(stem\.conv1|res\d\.\d+\.(conv[123]|shortcut))(\.norm)?\.'
                     r'(weight|bias|running_mean|running_var)$')


def revert_detectron2_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``ResNet``/``ResNeXt`` names -> detectron2's (``stem.conv1``, ``res2..res5``;
    ``num_batches_tracked`` dropped: detectron2's norms are mostly ``FrozenBN``). A deep stem
    (ResNetV1c/V1d), an avg-down shortcut (ResNetV1d), DCN or plugin keys are refused: detectron2's
    ``BasicStem`` has one conv and its shortcut is a strided 1x1 conv."""
    if any(k.startswith('stem.') for k in state_dict):
        raise ValueError("detectron2's ResNet has a one-conv stem (BasicStem); this checkpoint "
                         "has a deep stem (stem.0/1/2: ResNetV1c/ResNetV1d)")
    out, other = {}, []
    for key, new in rename_mmpretrain_to_d2(state_dict).items():
        if new is None or key.endswith('num_batches_tracked'):
            continue
        if not _D2_KEY.match(new):
            other.append(key)
            continue
        out[new] = state_dict[key]
    if other:
        raise ValueError(f"detectron2's ResNet has no place for {len(other)} key(s) of this "
                         f"checkpoint (avg-down shortcuts, DCN, plugins, GroupNorm, ...): "
                         f"{', '.join(other[:5])}")
    return out
