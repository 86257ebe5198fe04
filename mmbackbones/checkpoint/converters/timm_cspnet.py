"""timm ``cspdarknet53`` / ``cspresnet50`` / ``cspresnext50`` state dict -> mmbackbones
(= mmpretrain) ``CSPDarkNet`` / ``CSPResNet`` / ``CSPResNeXt`` names (keys in, keys out).

==========================================  ================================================
timm                                        mmpretrain / mmbackbones
==========================================  ================================================
``stem.conv1.conv|bn``                      ``stem.conv|bn`` (CSPDarkNet) or ``stem.0.conv|bn``
``stages.{i}.conv_down.*``                  ``stages.{i}.downsample_conv.*``
``stages.{i}.conv_exp.*``                   ``stages.{i}.expand_conv.*``
``stages.{i}.conv_transition_b.*``          ``stages.{i}.atfer_blocks_conv.*`` (sic)
``stages.{i}.conv_transition.*``            ``stages.{i}.final_conv.*``
``stages.{i}.blocks.{j}.conv{k}.conv|bn``   dark blocks: unchanged; ResNet(X)t bottlenecks:
                                            ``stages.{i}.blocks.{j}.conv{k}|bn{k}``
``head.fc.*``                               dropped (classifier)
==========================================  ================================================

The networks are the same: a stage is ``conv_down`` -> ``conv_exp`` -> split the channels in
halves, blocks on the second -> ``conv_transition_b`` -> concat -> ``conv_transition``; the
expand conv of cspresnet/cspresnext is linear (timm's ``cross_linear``, mmpretrain's
``act_cfg=None``), ResNeXt groups its ``conv_down`` too. The dark variant is told by its blocks
(two convs; bottlenecks have ``conv3``). Tensors are unchanged.

timm variants with parts mmpretrain's CSPNet does not have raise ``KeyError`` naming them rather
than half-load: a deep stem with a max pool (``cspresnet50d/w``), CSP3 stages (``cs3*``, no
``conv_transition_b``), plain DarkNet stages (``darknet53``, no ``conv_exp``), attention blocks.
"""
import re
from typing import Dict, Mapping

import torch

_STAGE_PARTS = {'conv_down': 'downsample_conv', 'conv_exp': 'expand_conv',
                'conv_transition_b': 'atfer_blocks_conv', 'conv_transition': 'final_conv'}
_STAGE = re.compile(r'^stages\.(\d+)\.(conv_down|conv_exp|conv_transition_b|conv_transition)\.'
                    r'(conv|bn)\.(.+)$')
_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.conv(\d)\.(conv|bn)\.(.+)$')
_STEM = re.compile(r'^stem\.conv1\.(conv|bn)\.(.+)$')


def is_timm_cspnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm's CSPNet layout: ``stem.conv1.conv.weight`` and ``stages.0.conv_exp`` or
    ``conv_transition`` convs."""
    return 'stem.conv1.conv.weight' in state_dict and any(
        re.match(r'^stages\.\d+\.(conv_exp|conv_transition)\.conv\.weight$', k)
        for k in state_dict)


def _check_variant(state_dict: Mapping[str, torch.Tensor]) -> None:
    keys = list(state_dict)
    stages = {int(k.split('.')[1]) for k in keys if re.match(r'^stages\.\d+\.', k)}
    for stage in sorted(stages):
        for part in ('conv_exp', 'conv_transition_b'):
            if f'stages.{stage}.{part}.conv.weight' not in state_dict:
                raise KeyError(f'stages.{stage} of this timm CSP net has no {part} (CSP3 stages of '
                               f"cs3*, or plain DarkNet stages): mmpretrain's CSPNet stages "
                               f'always have one')
    if 'stem.conv2.conv.weight' in state_dict:
        raise KeyError("timm's multi-conv CSP stem (stem.conv1..3 and a max pool: cspresnet50d/w) "
                       "has no counterpart in mmpretrain's CSPNet (CSPResNet's deep_stem has no "
                       "pool)")


def convert_timm_cspnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain CSPNet keys; the classifier (``head.fc``) is dropped.

    Unknown keys (attention, ``aa`` layers, ...) raise ``KeyError`` naming the key.
    """
    _check_variant(state_dict)
    dark = not any(re.match(r'^stages\.\d+\.blocks\.\d+\.conv3\.', k) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.fc.'):
            continue
        stem, stage, block = _STEM.match(key), _STAGE.match(key), _BLOCK.match(key)
        if stem:
            new = ('stem.' if dark else 'stem.0.') + '.'.join(stem.groups())
        elif stage:
            index, part, kind, rest = stage.groups()
            new = f'stages.{index}.{_STAGE_PARTS[part]}.{kind}.{rest}'
        elif block:
            index, j, k, kind, rest = block.groups()
            if dark:
                new = f'stages.{index}.blocks.{j}.conv{k}.{kind}.{rest}'
            else:
                new = f'stages.{index}.blocks.{j}.{"conv" if kind == "conv" else "bn"}{k}.{rest}'
        else:
            raise KeyError(f'unexpected key {key!r} in a timm CSPNet state dict (a part '
                           f"mmpretrain's CSPDarkNet/CSPResNet/CSPResNeXt does not have)")
        out[new] = value
    return out
