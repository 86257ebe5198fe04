"""detrex's ``ConvNeXt`` (and the official facebookresearch/ConvNeXt) state dict <->
mmbackbones/mmpretrain ``ConvNeXt`` names (keys in, keys out).

=======================================  ==========================================
detrex / official                        mmpretrain / mmbackbones
=======================================  ==========================================
``downsample_layers.{i}.0|1``            ``downsample_layers.{i}.0|1``
``stages.{i}.{j}.dwconv``                ``stages.{i}.{j}.depthwise_conv``
``stages.{i}.{j}.norm``                  ``stages.{i}.{j}.norm``
``stages.{i}.{j}.pwconv1|pwconv2``       ``stages.{i}.{j}.pointwise_conv1|2``
``stages.{i}.{j}.gamma``                 ``stages.{i}.{j}.gamma``
``norm{i}`` (detrex's output norms)      ``norm{i}``
``norm`` (official classifier)           ``norm{last}``
=======================================  ==========================================

The official classifier ``head.*`` is dropped. Tensors are unchanged.
"""
import re
from typing import Dict, Mapping

import torch

_BLOCK = re.compile(r'^stages\.(\d+)\.(\d+)\.(.+)$')
_PARTS = (('dwconv.', 'depthwise_conv.'), ('norm.', 'norm.'), ('pwconv1.', 'pointwise_conv1.'),
          ('pwconv2.', 'pointwise_conv2.'), ('gamma', 'gamma'))
_OTHER = re.compile(r'^(downsample_layers\.\d+\.[01]\.|norm\d+\.)')


def is_detrex_convnext(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a detrex/official ConvNeXt state dict (``stages.0.0.dwconv``)."""
    return 'downsample_layers.0.0.weight' in state_dict and any(
        k.startswith('stages.0.0.dwconv.') for k in state_dict)


def _rename(key: str, parts) -> str:
    m = _BLOCK.match(key)
    if m is None:
        return None
    stage, block, rest = m.groups()
    for src, dst in parts:
        if rest == src or (src.endswith('.') and rest.startswith(src)):
            return f'stages.{stage}.{block}.{dst}{rest[len(src):]}'
    return None


def convert_detrex_convnext(state_dict: Mapping[str, torch.Tensor],
                            num_stages: int = 4) -> Dict[str, torch.Tensor]:
    """Return a new dict with mmpretrain ConvNeXt keys (see the module table). ``num_stages``
    names the official final norm ``norm{num_stages - 1}``. Unknown keys raise ``KeyError``."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        if key.startswith('norm.'):
            new = f'norm{num_stages - 1}.' + key[len('norm.'):]
        elif _OTHER.match(key):
            new = key
        else:
            new = _rename(key, _PARTS)
        if new is None:
            raise KeyError(f'unexpected key {key!r} in a detrex ConvNeXt state dict')
        out[new] = value
    return out


def revert_detrex_convnext(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``ConvNeXt`` names -> detrex's (``ValueError`` naming the keys it has no place for:
    GRN, 1x1-conv pointwise layers keep their names but detrex has neither)."""
    back = [(dst, src) for src, dst in _PARTS]
    out, other = {}, []
    for key, value in state_dict.items():
        new = key if _OTHER.match(key) else _rename(key, back)
        if new is None or '.grn.' in key:
            other.append(key)
        else:
            out[new] = value
    if other:
        raise ValueError(f"detrex's ConvNeXt has no place for {len(other)} key(s) of this "
                         f"checkpoint: {', '.join(other[:5])}")
    return out


__all__ = ['is_detrex_convnext', 'convert_detrex_convnext', 'revert_detrex_convnext']
