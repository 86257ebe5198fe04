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


_QKV = re.compile(r'^(layers\.\d+\.attn\.)(qkv\.weight|qkv\.bias|proj\.(.+))$')


def revert_mmseg_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``VisionTransformer`` names -> mmseg's (see the module table). What mmseg's ViT
    cannot hold is refused: an averaged-output norm (``ln2``, ``out_type='avg_featmap'``), layer
    scale (``gamma1``/``gamma2``), and an output-projection bias without a qkv bias (mmseg's
    ``nn.MultiheadAttention`` has both or neither). A model without a class token gets mmseg's
    unused one (zeros) and a zero position entry for it."""
    other = [k for k in state_dict
             if k.startswith('ln2.') or '.gamma1.' in k or '.gamma2.' in k]
    if other:
        raise ValueError(f"mmseg's VisionTransformer has no place for {', '.join(other[:4])} "
                         f"(averaged-output norm, layer scale)")
    out = {}
    for key, value in state_dict.items():
        match = _QKV.match(key)
        if match:
            head, name, rest = match.groups()
            if name == 'proj.bias' and head + 'qkv.bias' not in state_dict:
                raise ValueError(f"mmseg's VisionTransformer ties the output-projection bias "
                                 f"to qkv_bias; this checkpoint has {key!r} but no qkv bias")
            if name.startswith('qkv.'):
                key = head + 'attn.in_proj_' + name[len('qkv.'):]
            else:
                key = head + 'attn.out_proj.' + rest
        elif key.startswith('pre_norm.'):
            key = 'ln_pre.' + key[len('pre_norm.'):]
        out[key] = value
    pos_embed = out.get('pos_embed')
    if 'cls_token' not in out and isinstance(pos_embed, torch.Tensor) and pos_embed.dim() == 3:
        # built with_cls_token=False, we keep no class token; mmseg always has one (dropped
        # after the position embedding, so its value never matters): zeros, and a zero
        # position entry in front
        zero = pos_embed.new_zeros(1, 1, pos_embed.shape[2])
        out['cls_token'] = zero.clone()
        out['pos_embed'] = torch.cat((zero, pos_embed), dim=1)
    return out
