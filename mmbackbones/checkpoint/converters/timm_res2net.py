"""timm ``res2net*`` / ``res2next50`` state dict -> mmbackbones/mmpretrain ``Res2Net`` names, and
back.

timm's ``Bottle2neck`` and mmpretrain's have the same names (``conv1``, ``bn1``, ``convs.{i}``,
``bns.{i}``, ``conv3``, ``bn3``, ``downsample.*``; with ``avg_down`` both keep the pool at index
0 in every stage). What converts: timm's deep stem (``res2net50d``/``101d``: ``conv1.0|1|3|4|6``
+ ``bn1`` -> ``stem.{0,1,2}.conv|bn``) and the classifier ``fc.*`` (dropped).

timm variants and ours (the 7x7 stem and strided-conv shortcuts: ``deep_stem=False,
avg_down=False``): ``res2net50_26w_4s`` = ``Res2Net(depth=50, scales=4, base_width=26, ...)``,
likewise ``res2net101_26w_4s``, ``res2net50_26w_6s``/``_8s``, ``res2net50_48w_2s``,
``res2net50_14w_8s``; ``res2net50d``/``res2net101d`` keep mmpretrain's default deep stem and
avg-down. ``res2next50`` has grouped scale convs (cardinality 8), which no OpenMMLab Res2Net
has: :data:`NO_COUNTERPART`.
"""
from typing import Dict, Mapping

import torch

from .key_parts import rename_prefix

from .timm_resnet import _DEEP_STEM

_PLAIN = dict(deep_stem=False, avg_down=False)
TIMM_RES2NET_ARCHS = {
    'res2net50_26w_4s': dict(depth=50, scales=4, base_width=26, **_PLAIN),
    'res2net101_26w_4s': dict(depth=101, scales=4, base_width=26, **_PLAIN),
    'res2net50_26w_6s': dict(depth=50, scales=6, base_width=26, **_PLAIN),
    'res2net50_26w_8s': dict(depth=50, scales=8, base_width=26, **_PLAIN),
    'res2net50_48w_2s': dict(depth=50, scales=2, base_width=48, **_PLAIN),
    'res2net50_14w_8s': dict(depth=50, scales=8, base_width=14, **_PLAIN),
    'res2net50d': dict(depth=50, scales=4, base_width=26),
    'res2net101d': dict(depth=101, scales=4, base_width=26),
}
NO_COUNTERPART = {'res2next50': "grouped 3x3 scale convs (timm's cardinality=8); mmpretrain's "
                                "and mmdet's Bottle2neck have none"}


def is_timm_res2net(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm's Res2Net: scale convs and timm's classifier or deep stem (``conv1.0``)."""
    return 'layer1.0.convs.0.weight' in state_dict and (
        'fc.weight' in state_dict or 'conv1.0.weight' in state_dict)


def convert_timm_res2net(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain names; the classifier is dropped. A ``ValueError`` for
    ``res2next50`` (:data:`NO_COUNTERPART`)."""
    conv = state_dict.get('layer1.0.convs.0.weight')
    if conv is not None and conv.dim() == 4 and conv.shape[0] != conv.shape[1]:
        raise ValueError(f"timm res2next50 ({conv.shape[0] // conv.shape[1]} groups per scale "
                         f"conv): {NO_COUNTERPART['res2next50']}")
    deep = 'conv1.0.weight' in state_dict
    out = {}
    for key, value in state_dict.items():
        if key.startswith('fc.'):
            continue
        if deep and not key.startswith('layer'):
            key = rename_prefix(key, _DEEP_STEM.items(), default=key)
        out[key] = value
    return out


def revert_timm_res2net(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``Res2Net`` names -> timm's ``res2net*`` (build it with ``num_classes=0``)."""
    stem = {dst: src for src, dst in _DEEP_STEM.items()}
    out = {}
    for key, value in state_dict.items():
        if not key.startswith(('stem.', 'layer', 'conv1.', 'bn1.')):
            raise ValueError(f"timm's Res2Net has no place for {key!r}")
        key = rename_prefix(key, stem.items(), default=key)
        out[key] = value
    return out
