"""timm's EfficientNet-builder layout (``conv_stem``/``bn1``, ``blocks.{s}.{j}``,
``conv_head``/``bn2``) <-> mmbackbones (= mmpretrain) ``MobileNetV2`` / ``MobileNetV3`` /
``EfficientNet`` / ``EfficientNetV2`` names, both ways (keys in, keys out).

timm builds ``mobilenetv2_*``, ``mobilenetv3_*``, ``efficientnet_*``, ``tf_efficientnet_*``,
``tf_efficientnetv2_*`` from the same blocks; inside a block:

============================================  ===============================================
timm                                          ours
============================================  ===============================================
``conv_pw``/``bn1`` (inverted residual)       ``expand_conv.conv|bn`` (MobileNetV2: ``conv.0``)
``conv_dw``/``bn2`` (``bn1`` in a ds block)   ``depthwise_conv.conv|bn`` (``conv.1``/``conv.0``)
``conv_pwl``/``bn3`` (``conv_pw``/``bn2``)    ``linear_conv.conv|bn`` (``conv.2``/``conv.1``)
``se.conv_reduce`` / ``se.conv_expand``       ``se.conv1.conv`` / ``se.conv2.conv``
``conv_exp``/``bn1``, ``conv_pwl``/``bn2``    ``conv1.conv|bn``, ``conv2.conv|bn`` (edge/fused)
``conv``/``bn1`` (conv-bn-act block)          ``conv``/``bn``
============================================  ===============================================

and the blocks, in order, go to ``layer{s+1}.{j}`` (MobileNetV2), ``layer{k}`` (MobileNetV3,
k counting blocks; its final conv-bn-act stage is the last ``layer``), ``layers.{s+1}.{j}``
(EfficientNetV2) or ``layers.{i}.{j}`` (EfficientNet, whose stride-1 stages are joined to the
previous one: with the model's keys as ``target`` the grouping is read from them). The stem is
``conv1``/``layer0``/``layers.0``; ``conv_head``/``bn2`` the final conv (``conv2`` or the last
``layers``); MobileNetV3's pooled ``conv_head`` (a bias, no norm) and every ``classifier`` are
the head and dropped. Tensors are unchanged.

Networks timm has and mmpretrain has not (``efficientnet_lite*``, MobileNetV2 with other
depths, ``mobilenetv4``, ``mixnet``, ``efficientnetv2_rw_*`` with their own stems) raise
``KeyError`` saying so. Numbers also depend on BN ``eps`` and padding: timm's ``tf_`` models
pad as TensorFlow (our ``Conv2dAdaptivePadding`` / ``tf_padding=True``) with ``eps=1e-3``, the
others pad symmetrically with ``eps=1e-5``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

_BLOCK = re.compile(r'^blocks\.(\d+)\.(\d+)\.(.+)$')
_HEAD = ('classifier.', )
MOBILENETV2_DEPTHS = (1, 2, 3, 4, 3, 3, 1)
_SE = {'se.conv_reduce': 'se.conv1.conv', 'se.conv_expand': 'se.conv2.conv'}
# block kind -> {timm module: our module}
_NAMED = {
    'ir': {'conv_pw': 'expand_conv.conv', 'bn1': 'expand_conv.bn', 'conv_dw':
           'depthwise_conv.conv', 'bn2': 'depthwise_conv.bn', 'conv_pwl': 'linear_conv.conv',
           'bn3': 'linear_conv.bn', **_SE},
    'ds': {'conv_dw': 'depthwise_conv.conv', 'bn1': 'depthwise_conv.bn',
           'conv_pw': 'linear_conv.conv', 'bn2': 'linear_conv.bn', **_SE},
    'er': {'conv_exp': 'conv1.conv', 'bn1': 'conv1.bn', 'conv_pwl': 'conv2.conv',
           'bn2': 'conv2.bn', **_SE},
    'cn': {'conv': 'conv', 'bn1': 'bn'},
}
_SEQUENTIAL = {
    'ir': {'conv_pw': 'conv.0.conv', 'bn1': 'conv.0.bn', 'conv_dw': 'conv.1.conv',
           'bn2': 'conv.1.bn', 'conv_pwl': 'conv.2.conv', 'bn3': 'conv.2.bn'},
    'ds': {'conv_dw': 'conv.0.conv', 'bn1': 'conv.0.bn', 'conv_pw': 'conv.1.conv',
           'bn2': 'conv.1.bn'},
}
FAMILIES = ('MobileNetV2', 'MobileNetV3', 'EfficientNet', 'EfficientNetV2')


def is_timm_efficientnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm's layout: ``conv_stem.weight`` and ``blocks.0.0.*``."""
    return 'conv_stem.weight' in state_dict and any(k.startswith('blocks.0.0.')
                                                    for k in state_dict)


def _blocks(state_dict) -> 'OrderedDict[Tuple[int, int], Dict[str, torch.Tensor]]':
    blocks = {}
    for key, value in state_dict.items():
        match = _BLOCK.match(key)
        if match:
            s, j, rest = match.groups()
            blocks.setdefault((int(s), int(j)), {})[rest] = value
    return OrderedDict(sorted(blocks.items()))


def _kind(keys) -> str:
    if any(k.startswith('conv_exp.') for k in keys):
        return 'er'
    if any(k.startswith('conv_pwl.') for k in keys):
        return 'ir'
    if any(k.startswith('conv_dw.') for k in keys):
        return 'ds'
    if any(k.startswith('conv.') for k in keys):
        return 'cn'
    raise KeyError(f'a timm block with keys {sorted(keys)[:6]} is none of the inverted '
                   f'residual, depthwise-separable, edge or conv-bn-act blocks mmpretrain has')


def _family(state_dict, blocks, target) -> str:
    if target is not None:
        if 'conv1.conv.weight' in target:
            return 'MobileNetV2'
        if 'layer0.conv.weight' in target:
            return 'MobileNetV3'
    stages = sorted({s for s, _ in blocks})
    kinds = {key: _kind(b) for key, b in blocks.items()}
    last = stages[-1]
    if kinds.get((0, 0)) == 'cn':
        return 'EfficientNetV2'
    if 'bn2.weight' not in state_dict and kinds.get((last, 0)) == 'cn':
        return 'MobileNetV3'
    has_se = any(k.startswith('se.') for b in blocks.values() for k in b)
    depths = tuple(sum(1 for s2, _ in blocks if s2 == s) for s in stages)
    if not has_se and 'er' not in kinds.values():
        if depths == MOBILENETV2_DEPTHS:
            return 'MobileNetV2'
        raise KeyError(f'this timm network has no squeeze-excite and stage depths {depths}: '
                       f'neither MobileNetV2 {MOBILENETV2_DEPTHS} nor an EfficientNet '
                       f'mmpretrain has (efficientnet_lite* and deeper MobileNetV2s have no '
                       f'counterpart)')
    return 'EfficientNet'


def _efficientnet_groups(blocks, target) -> List[List[Tuple[int, int]]]:
    """timm's blocks grouped as mmpretrain's ``layers[1..]``."""
    order = list(blocks)
    if target is not None:
        sizes = {}
        for key in target:
            match = re.match(r'^layers\.(\d+)\.(\d+)\.', key)
            if match:
                i, j = int(match.group(1)), int(match.group(2))
                sizes[i] = max(sizes.get(i, 0), j + 1)
        groups, start = [], 0
        for i in sorted(sizes):
            groups.append(order[start:start + sizes[i]])
            start += sizes[i]
        return groups
    stages = sorted({s for s, _ in order})
    joined = {7: (4, 6), 6: (4, )}.get(len(stages))  # b0-b8/l2 and EdgeTPU's stride-1 stages
    if joined is None:
        raise KeyError(f'a timm EfficientNet with {len(stages)} stages: mmpretrain has 7 (b*) '
                       f'or 6 (EdgeTPU)')
    groups = []
    for s in stages:
        members = [key for key in order if key[0] == s]
        if s in joined:
            groups[-1].extend(members)
        else:
            groups.append(members)
    return groups


def _block_prefixes(family, blocks, target) -> Dict[Tuple[int, int], str]:
    order = list(blocks)
    if family == 'MobileNetV2':
        return {(s, j): f'layer{s + 1}.{j}.' for s, j in order}
    if family == 'MobileNetV3':
        return {key: f'layer{k + 1}.' for k, key in enumerate(order)}
    if family == 'EfficientNetV2':
        return {(s, j): f'layers.{s + 1}.{j}.' for s, j in order}
    return {key: f'layers.{i}.{j}.' for i, group in enumerate(
        _efficientnet_groups(blocks, target), start=1) for j, key in enumerate(group)}


def convert_timm_efficientnet(state_dict: Mapping[str, torch.Tensor],
                              target: Optional[Mapping[str, Sequence[int]]] = None
                              ) -> Dict[str, torch.Tensor]:
    """A new dict in our names (see the module docstring); ``target``: the model's keys."""
    blocks = _blocks(state_dict)
    family = _family(state_dict, blocks, target)
    prefixes = _block_prefixes(family, blocks, target)
    tables = _SEQUENTIAL if family == 'MobileNetV2' else _NAMED
    stem = {'MobileNetV2': 'conv1.', 'MobileNetV3': 'layer0.'}.get(family, 'layers.0.')
    if family == 'MobileNetV2':
        head = 'conv2.'
    elif family == 'EfficientNet':
        head = f'layers.{len(set(p.split(".")[1] for p in prefixes.values())) + 1}.'
    else:
        head = f'layers.{len({s for s, _ in blocks}) + 1}.'
    out = {}
    for key, value in state_dict.items():
        if key.startswith(_HEAD) or (family == 'MobileNetV3' and key.startswith('conv_head.')):
            continue
        match = _BLOCK.match(key)
        if match:
            s, j, rest = match.groups()
            kind = _kind(blocks[(int(s), int(j))])
            table = tables.get(kind)
            module, _, leaf = rest.rpartition('.')
            if table is None or module not in table:
                raise KeyError(f'{key!r}: timm {kind} block part {module!r} has no place in '
                               f"mmpretrain's {family}")
            out[prefixes[(int(s), int(j))] + table[module] + '.' + leaf] = value
        elif key.startswith(('conv_stem.', 'bn1.')):
            part, leaf = key.split('.', 1)
            out[stem + ('conv.' if part == 'conv_stem' else 'bn.') + leaf] = value
        elif key.startswith(('conv_head.', 'bn2.')):
            part, leaf = key.split('.', 1)
            out[head + ('conv.' if part == 'conv_head' else 'bn.') + leaf] = value
        else:
            raise KeyError(f'unexpected key {key!r} in a timm {family} state dict')
    return out


_OURS = re.compile(r'^(layer\d+\.\d+|layer\d+|layers\.\d+\.\d+|layers\.\d+|conv1|conv2)\.(.+)$')


def _our_kind(parts) -> str:
    if any(p.startswith('conv1.') for p in parts):
        return 'er'
    if any(p.startswith('conv.2.') for p in parts) or any(p.startswith('expand_conv.')
                                                          for p in parts):
        return 'ir'
    if any(p.startswith(('conv.1.', 'depthwise_conv.')) for p in parts):
        return 'ds'
    return 'cn'


def revert_timm_efficientnet(state_dict: Mapping[str, torch.Tensor]
                             ) -> Dict[str, torch.Tensor]:
    """Our MobileNetV2/V3/EfficientNet/V2 names -> timm's (build timm's model with
    ``num_classes=0``; MobileNetV3's pooled ``conv_head`` is not ours to give)."""
    if 'conv1.conv.weight' in state_dict:
        family, stem = 'MobileNetV2', 'conv1.'
    elif 'layer0.conv.weight' in state_dict:
        family, stem = 'MobileNetV3', 'layer0.'
    elif 'layers.0.conv.weight' in state_dict:
        family = 'EfficientNetV2' if 'layers.1.0.conv.weight' in state_dict else 'EfficientNet'
        stem = 'layers.0.'
    else:
        raise ValueError('not a MobileNetV2/V3 or EfficientNet(V2) state dict in our names '
                         '(no conv1, layer0 or layers.0 stem)')
    units: 'OrderedDict[str, Dict[str, torch.Tensor]]' = OrderedDict()
    for key, value in state_dict.items():
        match = _OURS.match(key)
        if match is None:
            raise ValueError(f"timm's layout has no place for {key!r}")
        units.setdefault(match.group(1), {})[match.group(2)] = value
    stem_unit = units.pop(stem.rstrip('.'))
    names = list(units)
    head_name = names[-1] if names and re.fullmatch(r'layers\.\d+|layer\d+|conv2', names[-1]) \
        and _our_kind(units[names[-1]]) == 'cn' else None  # None: truncated, no final conv
    blocks = [n for n in names if n != head_name]
    out = {('conv_stem.' if p.startswith('conv.') else 'bn1.') + p.split('.', 1)[1]: v
           for p, v in stem_unit.items()}
    stage, index, width = -1, 0, None
    for n, name in enumerate(blocks):
        parts = units[name]
        kind = _our_kind(parts)
        if family in ('MobileNetV2', 'EfficientNetV2'):
            s, j = (int(x) for x in re.findall(r'\d+', name)[:2])
            s, j = s - 1, j
        else:
            last = [v for p, v in parts.items() if p.startswith(
                ('linear_conv.conv.weight', 'conv.2.conv.weight', 'conv.1.conv.weight',
                 'conv2.conv.weight', 'conv.weight'))][-1]
            if last.shape[0] != width:
                stage, index, width = stage + 1, 0, last.shape[0]
            s, j, index = stage, index, index + 1
        table = (_SEQUENTIAL if family == 'MobileNetV2' else _NAMED)[kind]
        back = {v: k for k, v in table.items()}
        for part, value in parts.items():
            module, _, leaf = part.rpartition('.')
            out[f'blocks.{s}.{j}.{back[module]}.{leaf}'] = value
    if head_name is not None:
        parts = units[head_name]
        if family == 'MobileNetV3':
            s = stage + 1
            out.update({f'blocks.{s}.0.' + ('conv.' if p.startswith('conv.') else 'bn1.')
                        + p.split('.', 1)[1]: v for p, v in parts.items()})
        else:
            out.update({('conv_head.' if p.startswith('conv.') else 'bn2.') + p.split('.', 1)[1]:
                        v for p, v in parts.items()})
    return out
