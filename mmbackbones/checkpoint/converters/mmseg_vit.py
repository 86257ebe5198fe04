"""mmseg ``VisionTransformer`` state dict -> mmbackbones (= mmpretrain) ``VisionTransformer``.

mmseg's ViT (and the timm/DeiT/BEiT-derived files its ``vit2mmseg`` tool writes) keeps mmcv's
``nn.MultiheadAttention`` names; everything else already has our names.

=============================================  ============================================
mmseg                                          mmpretrain / mmbackbones
=============================================  ============================================
``layers.{i}.attn.attn.in_proj_weight|bias``   ``layers.{i}.attn.qkv.weight|bias`` (the same
                                               ``[q; k; v]`` head-major rows: no permutation)
``layers.{i}.attn.attn.out_proj.*``            ``layers.{i}.attn.proj.*``
``ln_pre.*`` (``pre_norm=True``)               ``pre_norm.*``
=============================================  ============================================

``cls_token`` and ``pos_embed`` keep their names; a model built with ``with_cls_token=False``
drops mmseg's (unused) class token and its position entry when it loads them.
"""
import re
from typing import Dict, Mapping

import torch

_ATTN = re.compile(r'^(layers\.\d+\.attn\.)attn\.(in_proj_weight|in_proj_bias|out_proj\.(.+))$')


def is_mmseg_vit(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for mmseg's ViT layout (``layers.0.attn.attn.in_proj_weight``)."""
    return 'layers.0.attn.attn.in_proj_weight' in state_dict


def convert_mmseg_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict with mmpretrain ViT keys (see the module table)."""
    out = {}
    for key, value in state_dict.items():
        match = _ATTN.match(key)
        if match:
            head, name, rest = match.groups()
            if name == 'in_proj_weight':
                key = head + 'qkv.weight'
            elif name == 'in_proj_bias':
                key = head + 'qkv.bias'
            else:
                key = head + 'proj.' + rest
        elif key.startswith('ln_pre.'):
            key = 'pre_norm.' + key[len('ln_pre.'):]
        out[key] = value
    return out
