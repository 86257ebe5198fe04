"""timm ``hrnet_w*`` state dict -> mmbackbones/mmpretrain ``HRNet`` names (keys in, keys out).

timm's ``HighResolutionNet`` (a port of the official HRNet-Image-Classification code, as are
mmpretrain's, mmseg's and mmdet's) uses the same names for everything the backbone has:
``conv1``/``bn1``/``conv2``/``bn2``, ``layer1``, ``transition{1,2,3}``, ``stage{2,3,4}.{m}``
with ``branches`` and ``fuse_layers``. What converts is what only timm has, its head, which is
dropped:

* ``incre_modules.*`` (the channel-increasing bottlenecks, also in ``features_only`` models with
  timm's default ``feature_location='incre'``), ``downsamp_modules.*``, ``final_layer.*``;
* ``classifier.*``.

Tensors are unchanged. timm's ``hrnet_w18_small`` and ``hrnet_w18_small_v2`` are
``HRNet(arch='w18_small')`` / ``arch='w18_small_v2'``; ``hrnet_w{18..64}`` (and the ``_ssld``
weights) are ``arch='w{..}'``. A timm ``features_only`` model with ``feature_location=''`` has
no head: its state dict already is ours (nothing to convert).
"""
import re
from typing import Dict, Mapping

import torch

HEAD_PREFIXES = ('incre_modules.', 'downsamp_modules.', 'final_layer.', 'classifier.')
_BACKBONE = re.compile(r'^(conv[12]|bn[12]|layer1|transition[123]|stage[234])\.')
TIMM_HRNET_ARCHS = {'hrnet_w18_small': 'w18_small', 'hrnet_w18_small_v2': 'w18_small_v2',
                    **{f'hrnet_w{w}': f'w{w}' for w in (18, 30, 32, 40, 44, 48, 64)},
                    'hrnet_w18_ssld': 'w18', 'hrnet_w48_ssld': 'w48'}


def is_timm_hrnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a timm HRNet with its head (``stage2.0.fuse_layers`` and ``incre_modules``)."""
    return any(k.startswith('stage2.0.fuse_layers.') for k in state_dict) and any(
        k.startswith('incre_modules.') for k in state_dict)


def convert_timm_hrnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict with mmpretrain HRNet keys: the head dropped, the rest unchanged.

    A key that is neither head nor backbone raises ``KeyError`` naming it (no half loads).
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith(HEAD_PREFIXES):
            continue
        if not _BACKBONE.match(key):
            raise KeyError(f'unexpected key {key!r} in a timm HRNet state dict (expected the '
                           f'backbone conv1/bn1/conv2/bn2/layer1/transition*/stage* or the head '
                           f'{list(HEAD_PREFIXES)})')
        out[key] = value
    return out
