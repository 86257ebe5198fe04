"""timm ``regnetx_*`` state dict -> mmbackbones/mmpretrain ``RegNet`` names (keys in, keys out).

=============================================  ==============================================
timm                                           mmpretrain / mmbackbones
=============================================  ==============================================
``stem.conv.weight``                           ``conv1.weight``
``stem.bn.*``                                  ``bn1.*``
``s{i}.b{j}.conv{k}.conv.weight``              ``layer{i}.{j-1}.conv{k}.weight``
``s{i}.b{j}.conv{k}.bn.*``                     ``layer{i}.{j-1}.bn{k}.*``
``s{i}.b{j}.downsample.conv.weight``           ``layer{i}.{j-1}.downsample.0.weight``
``s{i}.b{j}.downsample.bn.*``                  ``layer{i}.{j-1}.downsample.1.*``
=============================================  ==============================================

``head.fc`` (the classifier) is dropped; tensors are unchanged. Only RegNetX converts: RegNetY's
squeeze-excitation (``se.*``) and RegNetZ/pre-activation layers have no counterpart in
mmpretrain's RegNet, so their keys raise ``KeyError`` rather than half-load.

timm and mmpretrain compute the same stage widths, depths and group widths from the same
``(w0, wa, wm, depth, group size)``; ``TIMM_REGNETX_ARCHS`` gives the ``RegNet(arch=...)`` dict
of each timm RegNetX (``regnetx_004`` is mmpretrain's ``regnetx_400mf``, ``regnetx_040`` its
``regnetx_4.0gf``, ...). The ``*_tv`` variants use torchvision's width rounding and are not
listed.
"""
import re
from typing import Dict, Mapping

import torch


def _x(w0, wa, wm, group_w, depth):
    return dict(w0=w0, wa=wa, wm=wm, group_w=group_w, depth=depth, bot_mul=1.0)


TIMM_REGNETX_ARCHS: Dict[str, dict] = {
    'regnetx_002': _x(24, 36.44, 2.49, 8, 13),
    'regnetx_004': _x(24, 24.48, 2.54, 16, 22),
    'regnetx_006': _x(48, 36.97, 2.24, 24, 16),
    'regnetx_008': _x(56, 35.73, 2.28, 16, 16),
    'regnetx_016': _x(80, 34.01, 2.25, 24, 18),
    'regnetx_032': _x(88, 26.31, 2.25, 48, 25),
    'regnetx_040': _x(96, 38.65, 2.43, 40, 23),
    'regnetx_064': _x(184, 60.83, 2.07, 56, 17),
    'regnetx_080': _x(80, 49.56, 2.88, 120, 23),
    'regnetx_120': _x(168, 73.36, 2.37, 112, 19),
    'regnetx_160': _x(216, 55.59, 2.1, 128, 22),
    'regnetx_320': _x(320, 69.86, 2.0, 168, 23),
}

_BLOCK = re.compile(r'^s(\d+)\.b(\d+)\.(conv[123]|downsample)\.(conv|bn)\.(.+)$')


def is_timm_regnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a timm RegNet state dict (``stem.conv.weight`` and ``s1.b1.conv1.conv.weight``)."""
    return 'stem.conv.weight' in state_dict and 's1.b1.conv1.conv.weight' in state_dict


def convert_timm_regnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict with mmpretrain RegNet keys; the classifier (``head.fc``) is dropped.

    Unknown keys (RegNetY's ``se``, an ``avg`` shortcut, ...) raise ``KeyError`` naming the key.
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.fc.'):
            continue
        if key.startswith('stem.conv.') or key.startswith('stem.bn.'):
            part, rest = key[len('stem.'):].split('.', 1)
            new = ('conv1.' if part == 'conv' else 'bn1.') + rest
        else:
            m = _BLOCK.match(key)
            if m is None:
                raise KeyError(f'unexpected key {key!r} in a timm RegNet state dict (only '
                               f'RegNetX with conv1x1 shortcuts converts to mmpretrain RegNet)')
            stage, block, layer, kind, rest = m.groups()
            prefix = f'layer{stage}.{int(block) - 1}.'
            if layer == 'downsample':
                new = prefix + ('downsample.0.' if kind == 'conv' else 'downsample.1.') + rest
            else:
                index = layer[-1]
                new = prefix + (f'conv{index}.' if kind == 'conv' else f'bn{index}.') + rest
        out[new] = value
    return out


_OURS = re.compile(r'^layer(\d+)\.(\d+)\.(conv[123]|bn[123]|downsample\.[01])\.(.+)$')


def revert_timm_regnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``RegNet`` names -> timm's RegNetX (build it with ``num_classes=0``)."""
    out, other = {}, []
    for key, value in state_dict.items():
        match = _OURS.match(key)
        if key.startswith(('conv1.', 'bn1.')):
            part, rest = key.split('.', 1)
            new = ('stem.conv.' if part == 'conv1' else 'stem.bn.') + rest
        elif match:
            stage, block, layer, rest = match.groups()
            prefix = f's{stage}.b{int(block) + 1}.'
            if layer.startswith('downsample'):
                new = prefix + ('downsample.conv.' if layer.endswith('0') else
                                'downsample.bn.') + rest
            else:
                new = prefix + f'conv{layer[-1]}.' + ('conv.' if layer.startswith('conv') else
                                                       'bn.') + rest
        else:
            other.append(key)
            continue
        out[new] = value
    if other:
        raise ValueError(f"timm's RegNet has no place for {len(other)} key(s) of this "
                         f"checkpoint: {', '.join(other[:5])}")
    return out
