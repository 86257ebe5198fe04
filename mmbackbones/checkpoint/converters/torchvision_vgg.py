"""torchvision ``vgg11``..``vgg19(_bn)`` state dict <-> mmbackbones/mmpretrain ``VGG`` names.

torchvision (and timm, and mmcv's ``VGG``) keep every conv, BatchNorm, ReLU and max pool as its
own ``features`` entry: ``features.{i}.weight`` with ``i`` counting the parameter-free ReLUs and
pools too. mmpretrain's ``VGG`` keeps one ``ConvModule`` per conv block,
``features.{m}.conv.*`` / ``features.{m}.bn.*``, and one entry per pool. The depth (11, 13, 16,
19) follows from the number of convs, so the index map is exact; a dict whose convs are not where
that depth puts them is refused (``KeyError``), never half-converted. torchvision's classifier
(``classifier.0/3/6``: Linear 25088 -> 4096 -> 4096 -> classes) is mmpretrain's, kept as it is.

A ``VGG(layout='torchvision')`` (and mmdet's ``SSDVGG``) already has these names: nothing to
convert there.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch

ARCH = {8: (1, 1, 2, 2, 2), 10: (2, 2, 2, 2, 2), 13: (2, 2, 3, 3, 3), 16: (2, 2, 4, 4, 4)}
_FLAT = re.compile(r'^features\.(\d+)\.(weight|bias|running_mean|running_var|'
                   r'num_batches_tracked)$')
_OURS = re.compile(r'^features\.(\d+)\.(conv|bn)\.(\w+)$')


def index_map(num_convs: int, with_bn: bool) -> List[Tuple[int, int]]:
    """``[(flat conv index, our block index)]`` of every conv of the depth with ``num_convs``
    convs (flat: conv[, bn], relu per block, a pool per stage; ours: a block, a pool per stage).
    """
    out, flat, ours = [], 0, 0
    for blocks in ARCH[num_convs]:
        for _ in range(blocks):
            out.append((flat, ours))
            flat, ours = flat + 3 + with_bn - 1, ours + 1
        flat, ours = flat + 1, ours + 1
    return out


def _flat_layout(state_dict: Mapping[str, torch.Tensor]):
    """``(num_convs, with_bn)`` when the ``features.*`` keys are a flat VGG, else None."""
    features = [k for k in state_dict if k.startswith('features.')]
    if not features or any(not _FLAT.match(k) for k in features):
        return None
    convs = sorted(int(_FLAT.match(k).group(1)) for k in features
                   if k.endswith('.weight') and getattr(state_dict[k], 'dim', lambda: 0)() == 4)
    with_bn = any(k.endswith('.running_mean') for k in features)
    if len(convs) not in ARCH or [f for f, _ in index_map(len(convs), with_bn)] != convs:
        return None
    return len(convs), with_bn


def flat_to_ours(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """The ``features.*`` keys of a flat VGG in our names (other keys are not included)."""
    layout = _flat_layout(state_dict)
    if layout is None:
        raise KeyError('not a torchvision/timm VGG features layout (features.N.weight with the '
                       'convs of VGG-11/13/16/19 at their indices)')
    num_convs, with_bn = layout
    out = OrderedDict()
    for flat, ours in index_map(num_convs, with_bn):
        for part, index in (('conv', flat), ('bn', flat + 1)):
            if part == 'bn' and not with_bn:
                continue
            for leaf in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'):
                key = f'features.{index}.{leaf}'
                if key in state_dict:
                    out[f'features.{ours}.{part}.{leaf}'] = state_dict[key]
    return out


def ours_to_flat(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Our ``features.{m}.conv|bn.*`` keys in the flat layout (the way back)."""
    blocks = sorted({int(m.group(1)) for m in map(_OURS.match, state_dict) if m})
    num_convs = len(blocks)
    if num_convs not in ARCH:
        raise ValueError(f'a VGG with {num_convs} conv blocks is not VGG-11/13/16/19: the '
                         f'torchvision/timm layout has no such model')
    with_bn = any('.bn.' in k for k in state_dict)
    if [o for _, o in index_map(num_convs, with_bn)] != blocks:
        raise ValueError('the VGG conv blocks are not at the indices of a 5-stage VGG (fewer '
                         'stages or a truncated model): torchvision/timm have no such layout')
    back = {ours: flat for flat, ours in index_map(num_convs, with_bn)}
    out = OrderedDict()
    for key, value in state_dict.items():
        match = _OURS.match(key)
        if match:
            flat = back[int(match.group(1))] + (match.group(2) == 'bn')
            out[f'features.{flat}.{match.group(3)}'] = value
    return out


def is_torchvision_vgg(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """A flat VGG features layout without timm's ``pre_logits`` (torchvision's, mmcv's, or a
    headless one)."""
    return _flat_layout(state_dict) is not None and not any(
        k.startswith(('pre_logits.', 'head.')) for k in state_dict)


def convert_torchvision_vgg(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict in mmpretrain ``VGG`` names (``classifier.*`` kept); another key raises
    ``KeyError`` naming it."""
    out = flat_to_ours(state_dict)
    for key, value in state_dict.items():
        if key.startswith('features.'):
            continue
        if not re.match(r'^classifier\.[036]\.(weight|bias)$', key):
            raise KeyError(f'unexpected key {key!r} in a torchvision VGG state dict (expected '
                           f'features.* and classifier.0/3/6)')
        out[key] = value
    return dict(out)


def revert_torchvision_vgg(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our names -> torchvision's (``classifier.*`` kept)."""
    out = ours_to_flat(state_dict)
    out.update((k, v) for k, v in state_dict.items() if k.startswith('classifier.'))
    return dict(out)
