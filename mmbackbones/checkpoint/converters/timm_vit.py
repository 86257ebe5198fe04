"""timm ``vit_*`` state dict -> mmbackbones (= mmpretrain) ``VisionTransformer`` names.

=======================================  ===========================================
timm                                     mmpretrain / mmbackbones
=======================================  ===========================================
``patch_embed.proj.*``                   ``patch_embed.projection.*``
``cls_token``, ``pos_embed``             unchanged (``pos_embed`` gets a zero cls entry
                                         when timm had ``no_embed_class=True``)
``norm_pre.*``                           ``pre_norm.*``
``blocks.{i}.norm1|norm2.*``             ``layers.{i}.ln1|ln2.*``
``blocks.{i}.attn.qkv|proj.*``           ``layers.{i}.attn.qkv|proj.*`` (same [q; k; v]
                                         head-major layout: no permutation)
``blocks.{i}.ls1.gamma`` / ``ls2.gamma`` ``layers.{i}.attn.gamma1.weight`` /
                                         ``layers.{i}.ffn.gamma2.weight``
``blocks.{i}.mlp.fc1|fc2.*``             ``layers.{i}.ffn.layers.0.0|layers.1.*``
``blocks.{i}.mlp.fc1|fc2.*`` (SwiGLU,    ``layers.{i}.ffn.w12|w3.*`` (DINOv2 giant; told
fc1 twice as wide as fc2's input)        apart from an MLP by the shapes)
``blocks.{i}.mlp.w12|w3.*`` (DINOv2)     ``layers.{i}.ffn.w12|w3.*``
``reg_token``, ``register_tokens``       ``register_tokens`` (DINOv2 registers)
``norm.*`` (final norm, token pooling)   ``ln1.*`` (``final_norm=True``)
``fc_norm.*`` (``global_pool='avg'``)    ``ln2.*`` (``out_type='avg_featmap'``,
                                         ``final_norm=False``)
``head.*``, ``head_drop``                dropped (classifier)
=======================================  ===========================================

The official DINOv2 layout (``register_tokens``, ``mlp.w12``, ``mask_token``) is the same
layout and converts the same way. Keys of features we do not have (qk-norm, attention pooling)
are kept as they are and show up as unexpected in the load report.
"""
import math
import re
from typing import Dict, Mapping

import torch

from .key_parts import rename_prefix

_BLOCK_RENAMES = (
    ('norm1.', 'ln1.'),
    ('norm2.', 'ln2.'),
    ('attn.qkv.', 'attn.qkv.'),
    ('attn.proj.', 'attn.proj.'),
    ('ls1.gamma', 'attn.gamma1.weight'),
    ('ls2.gamma', 'ffn.gamma2.weight'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
    ('mlp.w12.', 'ffn.w12.'),
    ('mlp.w3.', 'ffn.w3.'),
    ('attn.rel_pos_h', 'attn.rel_pos_h'),  # ViTDet (detectron2's timm-named ViT)
    ('attn.rel_pos_w', 'attn.rel_pos_w'),
)
_TOP_RENAMES = (
    ('patch_embed.proj.', 'patch_embed.projection.'),
    ('norm_pre.', 'pre_norm.'),
    ('fc_norm.', 'ln2.'),
    ('norm.', 'ln1.'),
    ('reg_token', 'register_tokens'),
)
_BLOCK = re.compile(r'^blocks\.(\d+)\.(.*)$')


def is_timm_vit(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm ViT layout: ``patch_embed.proj.weight`` and ``blocks.0.attn.qkv.weight``."""
    return 'patch_embed.proj.weight' in state_dict and 'blocks.0.attn.qkv.weight' in state_dict


is_timm_vit_state_dict = is_timm_vit


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def _is_swiglu(state_dict: Mapping[str, torch.Tensor], index: str) -> bool:
    """timm's packed SwiGLU (DINOv2 giant): ``fc1`` gives twice the channels ``fc2`` takes."""
    fc1 = state_dict.get(f'blocks.{index}.mlp.fc1.weight')
    fc2 = state_dict.get(f'blocks.{index}.mlp.fc2.weight')
    return (isinstance(fc1, torch.Tensor) and isinstance(fc2, torch.Tensor) and fc1.dim() == 2
            and fc2.dim() == 2 and fc1.shape[0] == 2 * fc2.shape[1])


def convert_timm_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain ``VisionTransformer`` names (tensors are not copied)."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(('head.', 'head_drop.')):
            continue
        match = _BLOCK.match(key)
        if match:
            index, rest = match.groups()
            if rest.startswith(('mlp.fc1.', 'mlp.fc2.')) and _is_swiglu(state_dict, index):
                rest = rest.replace('mlp.fc1.', 'ffn.w12.').replace('mlp.fc2.', 'ffn.w3.')
            rest = rename_prefix(rest, _BLOCK_RENAMES, default=rest)
            out[f'layers.{index}.{rest}'] = value
            continue
        for src, dst in _TOP_RENAMES:
            if key.startswith(src):
                key = dst + key[len(src):]
                break
        out[key] = value
    pos_embed = out.get('pos_embed')
    # timm's no_embed_class=True models (DeiT III, ...) add positions to the patch tokens only; an
    # all-zero cls entry gives the same result in our layout (positions added after the concat).
    if ('cls_token' in out and isinstance(pos_embed, torch.Tensor) and pos_embed.dim() == 3
            and _is_square(pos_embed.shape[1]) and not _is_square(pos_embed.shape[1] - 1)):
        out['pos_embed'] = torch.cat((pos_embed.new_zeros(1, 1, pos_embed.shape[2]), pos_embed),
                                     dim=1)
    return out


def revert_timm_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``VisionTransformer`` names -> timm's ``vit_*`` (build it with ``num_classes=0``;
    ``global_pool='avg', fc_norm=True`` when the checkpoint has ``ln2``). A model with both final
    norms (``ln1`` and ``ln2``) is refused: timm replaces ``norm`` by ``fc_norm`` under average
    pooling, it never applies both."""
    if any(k.startswith('ln1.') for k in state_dict) and \
            any(k.startswith('ln2.') for k in state_dict):
        raise ValueError("timm's ViT applies either its final norm or fc_norm, never both; this "
                         "checkpoint has ln1 (final_norm=True) and ln2 (out_type='avg_featmap')")
    blocks = [(dst, src) for src, dst in _BLOCK_RENAMES]
    top = [('patch_embed.projection.', 'patch_embed.proj.'), ('pre_norm.', 'norm_pre.'),
           ('ln2.', 'fc_norm.'), ('ln1.', 'norm.'), ('register_tokens', 'reg_token')]
    # timm's packed SwiGLU names (mlp_layer=SwiGLUPacked)
    blocks = [(('ffn.w12.', 'mlp.fc1.') if src == 'ffn.w12.' else ('ffn.w3.', 'mlp.fc2.'))
              if src in ('ffn.w12.', 'ffn.w3.') else (src, dst) for src, dst in blocks]
    out, other = {}, []
    for key, value in state_dict.items():
        match = re.match(r'^layers\.(\d+)\.(.*)$', key)
        if match:
            index, rest = match.groups()
            new = next((dst + rest[len(src):] for src, dst in blocks if rest.startswith(src)),
                       None)
            if new is None:
                other.append(key)
                continue
            out[f'blocks.{index}.{new}'] = value
            continue
        new = next((dst + key[len(src):] for src, dst in top if key.startswith(src)), None)
        if new is None and key not in ('cls_token', 'pos_embed'):
            other.append(key)
            continue
        out[new or key] = value
    if other:
        raise ValueError(f"timm's ViT has no place for {len(other)} key(s) of this checkpoint: "
                         f"{', '.join(other[:5])}")
    return out
