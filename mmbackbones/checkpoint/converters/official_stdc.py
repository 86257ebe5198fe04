"""The official STDC ImageNet releases (``MichaelFan01/STDC-Seg``: ``STDCNet813M_73.91.tar``,
``STDCNet1446_76.47.tar``; what mmseg's ``tools/model_converters/stdc2mmseg.py`` converts) <->
mmbackbones ``STDCNet`` names (= mmseg's, in which mmseg's converted files
``stdc{1,2}_20220308-*.pth`` already are: they load without conversion).

========================================  ================================================
official (``STDCNet813`` / ``STDCNet1446``)  ours / mmseg
========================================  ================================================
``features.0|1.conv|bn.*``                ``stages.0|1.conv|bn.*``
``features.{n}.conv_list.{i}.*`` (n >= 2)  ``stages.{s}.{j}.layers.{i}.*`` (block ``n - 2``
                                          counted over stages of 2/2/2 (STDC1) or 4/5/3
                                          (STDC2) blocks)
``...avd_layer.0|1.*``                    ``...downsample.conv|bn.*``
'add' blocks: ``...skip.0|1|2|3.*``       ``...skip.0.conv|0.bn|1.conv|1.bn.*``; a stride-2
                                          block's ``conv_list.0`` is ``layers.0.0`` and its
                                          ``avd_layer`` also ``layers.0.1`` (mmseg's
                                          shared module)
``conv_last.conv|bn.*``                   ``final_conv.conv|bn.*`` (mmseg's converter drops
                                          it; same module: 1x1 conv to ``max(1024, C)``)
``x2|x4|x8|x16|x32.*``                    dropped (the official model's aliases of
                                          ``features``)
``fc.*``, ``bn.*``, ``linear.*``          dropped (the classifier head)
========================================  ================================================

A file with another number of STDC blocks than 6 or 12 is refused naming it.
"""
import re
from typing import Dict, Mapping

import torch

BLOCKS = {6: (2, 2, 2), 12: (4, 5, 3)}  # STDC blocks in the file -> blocks per stage
_FEATURE = re.compile(r'^features\.(\d+)\.(.+)$')
_STAGE = re.compile(r'^stages\.(\d+)\.(?:(\d+)\.)?(.+)$')
_HEAD = ('fc.', 'bn.', 'linear.', 'x2.', 'x4.', 'x8.', 'x16.', 'x32.')
_SKIP = {'0': '0.conv', '1': '0.bn', '2': '1.conv', '3': '1.bn'}
_SKIP_BACK = {v: k for k, v in _SKIP.items()}


def is_official_stdc(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for the official layout: ``features.0.conv.weight`` and ``conv_list`` blocks."""
    return 'features.0.conv.weight' in state_dict and any(
        '.conv_list.' in k for k in state_dict)


def _stage_blocks(state_dict) -> tuple:
    count = len({int(m.group(1)) for m in map(_FEATURE.match, state_dict)
                 if m and int(m.group(1)) >= 2})
    if count not in BLOCKS:
        raise KeyError(f'an official STDC state dict holds 6 (STDC1) or 12 (STDC2) STDC blocks '
                       f'(features.2..), this one {count}')
    return BLOCKS[count]


def convert_official_stdc(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict in ``STDCNet`` names (see the module table)."""
    blocks = _stage_blocks(state_dict)
    places = [(s + 2, j) for s, n in enumerate(blocks) for j in range(n)]
    add = any(k.startswith('features.2.skip.') for k in state_dict)
    strided = {int(m.group(1)) for m in map(_FEATURE.match, state_dict)
               if m and m.group(2).startswith('avd_layer.')}
    out = {}
    for key, value in state_dict.items():
        if key.startswith(_HEAD):
            continue
        if key.startswith('conv_last.'):
            out['final_conv.' + key[len('conv_last.'):]] = value
            continue
        match = _FEATURE.match(key)
        if match is None:
            raise KeyError(f'unexpected key {key!r} in an official STDC state dict (expected '
                           f'features.*, conv_last.* or the head fc/bn/linear)')
        n, rest = int(match.group(1)), match.group(2)
        if n < 2:
            out[f'stages.{n}.{rest}'] = value
            continue
        stage, index = places[n - 2]
        block = f'stages.{stage}.{index}.'
        part = rest.split('.')
        if part[0] == 'conv_list':
            first = add and n in strided and part[1] == '0'
            out[block + ('layers.0.0.' if first else f'layers.{part[1]}.')
                + '.'.join(part[2:])] = value
        elif part[0] == 'avd_layer':
            name = ('conv', 'bn')[int(part[1])] + '.' + '.'.join(part[2:])
            out[block + 'downsample.' + name] = value
            if add:
                out[block + 'layers.0.1.' + name] = value
        elif part[0] == 'skip' and add:
            out[block + f'skip.{_SKIP[part[1]]}.' + '.'.join(part[2:])] = value
        else:
            raise KeyError(f'unexpected key {key!r} in an official STDC state dict')
    return out


def revert_official_stdc(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our (mmseg's) ``STDCNet`` names -> the official layout (no classifier head)."""
    counts = {}
    for m in map(_STAGE.match, state_dict):
        if m and m.group(2) is not None and int(m.group(1)) >= 2:
            counts.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    blocks = tuple(len(counts.get(s, ())) for s in (2, 3, 4))
    if blocks not in BLOCKS.values():
        raise ValueError(f'the official STDC layout has STDC1 (2, 2, 2) or STDC2 (4, 5, 3) '
                         f'blocks per stage, this model {blocks} (a truncated out_indices?)')
    first = {(s + 2, j): 2 + sum(blocks[:s]) + j for s, n in enumerate(blocks) for j in range(n)}
    out = {}
    for key, value in state_dict.items():
        if key.startswith('final_conv.'):
            out['conv_last.' + key[len('final_conv.'):]] = value
            continue
        match = _STAGE.match(key)
        if match is None:
            raise ValueError(f'the official STDC layout has no place for {key!r}')
        stage = int(match.group(1))
        if stage < 2:
            rest = key.split('.', 2)[2]
            out[f'features.{stage}.{rest}'] = value
            continue
        feature = f'features.{first[(stage, int(match.group(2)))]}.'
        part = match.group(3).split('.')
        if part[0] == 'layers' and len(part) > 3 and part[2] in ('0', '1') and \
                part[3] not in ('weight', 'bias', 'running_mean', 'running_var',
                                'num_batches_tracked'):
            if part[2] == '0':  # an 'add' block's Sequential(conv_0, downsample)
                out[feature + 'conv_list.0.' + '.'.join(part[3:])] = value
            continue  # its downsample is written from downsample.*
        if part[0] == 'layers':
            out[feature + f'conv_list.{part[1]}.' + '.'.join(part[2:])] = value
        elif part[0] == 'downsample':
            index = {'conv': '0', 'bn': '1'}[part[1]]
            out[feature + f'avd_layer.{index}.' + '.'.join(part[2:])] = value
        elif part[0] == 'skip':
            out[feature + f'skip.{_SKIP_BACK[part[1] + "." + part[2]]}.'
                + '.'.join(part[3:])] = value
        else:
            raise ValueError(f'the official STDC layout has no place for {key!r}')
    return out
