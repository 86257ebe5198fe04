"""timm ``darknet53`` state dict -> mmbackbones ``Darknet`` (= mmdet 3.3's ``Darknet``) names,
and back.

``darknet53`` is Darknet-53 exactly (3x3 stem conv, five stages of a stride-2 conv and
residual 1x1-3x3 blocks); its activation is LeakyReLU with slope 0.01 where mmdet's is 0.1, so
its weights give timm's outputs in ``Darknet(act_cfg=dict(type='LeakyReLU',
negative_slope=0.01))`` (:data:`TIMM_DARKNET_ARCHS`).

==========================================  ================================================
timm ``darknet53``                          ``Darknet``
==========================================  ================================================
``stem.conv1.conv|bn``                      ``conv1.conv|bn``
``stages.{i}.conv_down.*``                  ``conv_res_block{i+1}.conv.*``
``stages.{i}.blocks.{j}.conv{k}.*``         ``conv_res_block{i+1}.res{j}.conv{k}.*``
``head.fc.*``                               dropped (classifier)
==========================================  ================================================

No timm model is YOLOX's ``CSPDarknet`` or RTMDet's ``CSPNeXt``. The nearest,
``cs3darknet_focus_{s,m,l,x}`` (YOLOv5's CSP-Darknet; its 6x6 stride-2 stem is the same map
as a Focus + 3x3 conv), differs inside every stage: timm's ``conv_down`` keeps the width
(``C -> C``) and a 1x1 ``conv_exp`` widens to ``2C`` before the split, where YOLOX's stride-2
conv widens (``C -> 2C``) and two 1x1 convs narrow each half back (``2C -> C``); timm's last
stage has no SPP block and adds its blocks' inputs (YOLOX's does not). ``cs3darknet_{m,l,x}``
also have a two-conv stem with an activation between, ``cs3sedarknet_*``/``cs3edgenet_*`` SE
or edge blocks, ``darknetaa53`` an anti-aliased downsampling. Those keys raise ``KeyError``
(never a half load).
"""
import re
from typing import Dict, Mapping

import torch

_DARK_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.conv([12])\.(conv|bn)\.(.+)$')
_DOWN = re.compile(r'^stages\.(\d+)\.conv_down\.(conv|bn)\.(.+)$')


# timm model name -> the backbone config its weights load into (equal outputs)
TIMM_DARKNET_ARCHS = {
    'darknet53': dict(type='Darknet', depth=53, out_indices=(1, 2, 3, 4, 5),
                      act_cfg=dict(type='LeakyReLU', negative_slope=0.01)),
}


def _is_darknet53(state_dict) -> bool:
    return 'stem.conv1.conv.weight' in state_dict and 'stem.conv2.conv.weight' not in \
        state_dict and 'stages.0.conv_down.conv.weight' in state_dict and not any(
            '.conv_exp.' in k or '.conv_transition' in k for k in state_dict)


def is_timm_darknet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm's ``darknet53``: ``stem.conv1`` alone, plain dark stages (no CSP convs)."""
    return _is_darknet53(state_dict)


def _unknown(key: str, what: str) -> KeyError:
    return KeyError(f'unexpected key {key!r} in a timm {what} state dict: it has no counterpart '
                    f"in mmdet's structure (see mmbackbones.checkpoint.converters.timm_darknet)")


def _convert_darknet53(state_dict) -> Dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        if key.startswith('stem.conv1.'):
            out['conv1.' + key[len('stem.conv1.'):]] = value
        elif _DOWN.match(key):
            i, part, leaf = _DOWN.match(key).groups()
            out[f'conv_res_block{int(i) + 1}.conv.{part}.{leaf}'] = value
        elif _DARK_BLOCK.match(key):
            i, j, k, part, leaf = _DARK_BLOCK.match(key).groups()
            out[f'conv_res_block{int(i) + 1}.res{j}.conv{k}.{part}.{leaf}'] = value
        else:
            raise _unknown(key, 'darknet53')
    return out


def convert_timm_darknet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict in mmdet's ``Darknet`` names (timm's head dropped); a key with no place
    there raises ``KeyError`` naming it."""
    if not _is_darknet53(state_dict):
        raise KeyError('not a timm darknet53 state dict (stem.conv1 alone, stages of '
                       'conv_down + blocks without CSP convs)')
    return _convert_darknet53(state_dict)


def revert_timm_darknet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``Darknet`` names -> timm's ``darknet53`` (no head); anything else: ``ValueError``."""
    out = {}
    for key, value in state_dict.items():
        m = re.match(r'^conv_res_block(\d+)\.(conv|res(\d+)\.conv([12]))\.(conv|bn)\.(.+)$', key)
        if key.startswith('conv1.'):
            out['stem.conv1.' + key[len('conv1.'):]] = value
        elif m and m.group(3) is None:
            out[f'stages.{int(m.group(1)) - 1}.conv_down.{m.group(5)}.{m.group(6)}'] = value
        elif m:
            out[f'stages.{int(m.group(1)) - 1}.blocks.{m.group(3)}.conv{m.group(4)}.'
                f'{m.group(5)}.{m.group(6)}'] = value
        else:
            raise ValueError(f"{key!r} has no place in timm's darknet53")
    return out
