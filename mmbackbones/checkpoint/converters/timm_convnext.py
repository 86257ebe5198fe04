"""timm ``convnext_*`` state dict -> mmbackbones/mmpretrain ``ConvNeXt`` names (keys in, keys out).

=======================================  ==========================================
timm                                     mmpretrain / mmbackbones
=======================================  ==========================================
``stem.0|1``                             ``downsample_layers.0.0|1``
``stages.{i}.downsample.0|1``            ``downsample_layers.{i}.0|1``
``stages.{i}.blocks.{j}.conv_dw``        ``stages.{i}.{j}.depthwise_conv``
``stages.{i}.blocks.{j}.norm``           ``stages.{i}.{j}.norm``
``stages.{i}.blocks.{j}.mlp.fc1|fc2``    ``stages.{i}.{j}.pointwise_conv1|2``
``stages.{i}.blocks.{j}.mlp.grn.weight``  ``stages.{i}.{j}.grn.gamma`` (``bias``: ``beta``)
``stages.{i}.blocks.{j}.gamma``          ``stages.{i}.{j}.gamma``
``head.norm`` (or ``norm_pre``)          ``norm{last}`` (the output norm of the last stage)
=======================================  ==========================================

``head.fc`` (the classifier) is dropped. Tensors are unchanged; timm's 1x1-conv variant
(``conv_mlp=True``) maps to ``linear_pw_conv=False`` the same way.
"""
import re
from typing import Dict, Mapping

import torch

_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.(.+)$')
_BLOCK_PARTS = {
    'conv_dw.': 'depthwise_conv.',
    'norm.': 'norm.',
    'mlp.fc1.': 'pointwise_conv1.',
    'mlp.fc2.': 'pointwise_conv2.',
    'mlp.grn.weight': 'grn.gamma',
    'mlp.grn.bias': 'grn.beta',
    'gamma': 'gamma',
}


def is_timm_convnext(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a timm ConvNeXt state dict (``stem.0.weight`` and ``stages.0.blocks.0.conv_dw``)."""
    return 'stem.0.weight' in state_dict and any(
        k.startswith('stages.0.blocks.0.conv_dw.') for k in state_dict)


def convert_timm_convnext(state_dict: Mapping[str, torch.Tensor],
                          num_stages: int = 4) -> Dict[str, torch.Tensor]:
    """Return a new dict with mmpretrain ConvNeXt keys; the classifier (``head.fc``) is dropped.

    ``num_stages`` names the final norm ``norm{num_stages - 1}``. Unknown keys raise ``KeyError``
    so a wrong checkpoint is not half-loaded silently.
    """
    out = {}
    last = num_stages - 1
    for key, value in state_dict.items():
        if key.startswith('head.fc.') or key.startswith('head.pre_logits.'):
            continue
        if key.startswith('stem.'):
            new = 'downsample_layers.0.' + key[len('stem.'):]
        elif key.startswith('head.norm.'):
            new = f'norm{last}.' + key[len('head.norm.'):]
        elif key.startswith('norm_pre.'):  # timm's head_norm_first variants
            new = f'norm{last}.' + key[len('norm_pre.'):]
        elif re.match(r'^stages\.\d+\.downsample\.', key):
            stage, rest = re.match(r'^stages\.(\d+)\.downsample\.(.+)$', key).groups()
            new = f'downsample_layers.{stage}.{rest}'
        else:
            m = _BLOCK.match(key)
            if m is None:
                raise KeyError(f'unexpected key {key!r} in a timm ConvNeXt state dict')
            stage, block, rest = m.groups()
            for src, dst in _BLOCK_PARTS.items():
                if rest == src or (src.endswith('.') and rest.startswith(src)):
                    new = f'stages.{stage}.{block}.{dst}{rest[len(src):]}'
                    break
            else:
                raise KeyError(f'unexpected key {key!r} in a timm ConvNeXt state dict')
        out[new] = value
    return out


def revert_timm_convnext(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``ConvNeXt`` names -> timm's ``convnext_*`` (build it with ``num_classes=0``). Output
    norms of other stages than the last are refused (timm has one, ``head.norm``)."""
    norms = sorted({k.split('.')[0] for k in state_dict if re.match(r'^norm\d+\.', k)})
    if len(norms) > 1:
        raise ValueError(f"timm's ConvNeXt has one final norm (head.norm); this checkpoint has "
                         f"{', '.join(norms)} (out_indices other than the last stage)")
    parts = [(dst, src) for src, dst in _BLOCK_PARTS.items()]
    out, other = {}, []
    for key, value in state_dict.items():
        down = re.match(r'^downsample_layers\.(\d+)\.(.+)$', key)
        block = re.match(r'^stages\.(\d+)\.(\d+)\.(.+)$', key)
        if down:
            stage, rest = down.groups()
            new = 'stem.' + rest if stage == '0' else f'stages.{stage}.downsample.{rest}'
        elif re.match(r'^norm\d+\.', key):
            new = 'head.norm.' + key.split('.', 1)[1]
        elif block:
            stage, index, rest = block.groups()
            new = next((f'stages.{stage}.blocks.{index}.{dst}{rest[len(src):]}'
                        for src, dst in parts
                        if rest == src or (src.endswith('.') and rest.startswith(src))), None)
        else:
            new = None
        if new is None:
            other.append(key)
        else:
            out[new] = value
    if other:
        raise ValueError(f"timm's ConvNeXt has no place for {len(other)} key(s) of this "
                         f"checkpoint: {', '.join(other[:5])}")
    return out
