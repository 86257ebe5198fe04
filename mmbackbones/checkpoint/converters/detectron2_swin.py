"""detectron2's (and detrex's) ``SwinTransformer`` state dict <-> mmbackbones/mmpretrain
``SwinTransformer`` names (keys in, keys out).

detectron2's Swin (``detectron2.modeling.backbone.swin``, the class detrex's Swin configs build)
keeps the original Microsoft names and adds one output norm per returned stage:

==============================================  ==============================================
detectron2 / detrex                             mmpretrain / mmbackbones
==============================================  ==============================================
``patch_embed.proj``                            ``patch_embed.projection``
``layers.{i}.blocks.{j}.norm1|norm2``           ``stages.{i}.blocks.{j}.norm1|norm2``
``layers.{i}.blocks.{j}.attn.*``                ``stages.{i}.blocks.{j}.attn.w_msa.*``
``layers.{i}.blocks.{j}.mlp.fc1|fc2``           ``stages.{i}.blocks.{j}.ffn.layers.0.0|1``
``layers.{i}.downsample.*``                     ``stages.{i}.downsample.*`` (2x2 order permuted)
``norm{i}``                                     ``norm{i}``
``absolute_pos_embed`` ``(1, C, H, W)``         ``absolute_pos_embed`` ``(1, H * W, C)``
==============================================  ==============================================

The ``relative_position_index`` buffers are kept both ways (detectron2 saves them). Inside a
detrex model the keys carry ``backbone.``; the load hooks and ``init_cfg``'s ``prefix`` take it
off before conversion.
"""
import re
from typing import Dict, Mapping, Optional, Sequence

import torch

from .key_parts import rename_prefix

from .timm_swin import _BLOCK_PARTS, convert_timm_swin, fold_order, is_timm_swin

_NORM = re.compile(r'^norm\d+\.')
_OUR_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.(.+)$')
_OUR_DOWNSAMPLE = re.compile(r'^stages\.(\d+)\.downsample\.(.+)$')


def is_detectron2_swin(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a detectron2/detrex Swin state dict: the Microsoft block names with per-stage
    output norms ``norm{i}`` (and no final ``norm.`` nor classifier ``head.``)."""
    return (is_timm_swin(state_dict) and any(_NORM.match(k) for k in state_dict)
            and not any(k.startswith(('norm.', 'head.')) for k in state_dict))


def convert_detectron2_swin(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict with mmpretrain Swin keys (see the module table). Unknown keys raise
    ``KeyError``."""
    norms = {k: v for k, v in state_dict.items() if _NORM.match(k)}
    rest = {k: v for k, v in state_dict.items() if k not in norms}
    if any(k.startswith('layers.') and '.downsample.' in k for k in rest) and \
            not any(k.startswith('layers.0.downsample.') for k in rest):
        raise KeyError('a detectron2 Swin state dict has its first patch merging at '
                       'layers.0.downsample; this one has none there but later ones (timm >= '
                       '0.9 places them differently): not the detectron2 layout')
    out = convert_timm_swin(rest)
    pos = out.get('absolute_pos_embed')
    if pos is not None and pos.dim() == 4:  # (1, C, H, W) -> (1, H * W, C)
        out['absolute_pos_embed'] = pos.flatten(2).transpose(1, 2).contiguous()
    out.update(norms)
    return out


def revert_detectron2_swin(state_dict: Mapping[str, torch.Tensor],
                           patch_resolution: Optional[Sequence[int]] = None
                           ) -> Dict[str, torch.Tensor]:
    """Our ``SwinTransformer`` names -> detectron2's (build detectron2's class with the same
    ``out_indices``). ``patch_resolution`` ``(H, W)`` shapes ``absolute_pos_embed`` (default: a
    square grid; ``ValueError`` when it is not one)."""
    parts = [(dst, src) for src, dst in _BLOCK_PARTS]
    out, other = {}, []
    for key, value in state_dict.items():
        if key.startswith('patch_embed.projection.'):
            out['patch_embed.proj.' + key[len('patch_embed.projection.'):]] = value
        elif key.startswith('patch_embed.norm.') or _NORM.match(key):
            out[key] = value
        elif key == 'absolute_pos_embed':
            out[key] = _pos_to_map(value, patch_resolution)
        elif _OUR_DOWNSAMPLE.match(key):
            stage, rest = _OUR_DOWNSAMPLE.match(key).groups()
            if rest in ('reduction.weight', 'norm.weight', 'norm.bias'):
                value = fold_order(value)
            out[f'layers.{stage}.downsample.{rest}'] = value
        elif _OUR_BLOCK.match(key):
            stage, block, rest = _OUR_BLOCK.match(key).groups()
            new = rename_prefix(rest, parts)
            if new is None:
                other.append(key)
            else:
                out[f'layers.{stage}.blocks.{block}.{new}'] = value
        else:
            other.append(key)
    if other:
        raise ValueError(f"detectron2's SwinTransformer has no place for {len(other)} key(s) of "
                         f"this checkpoint: {', '.join(other[:5])}")
    return _reduction_first(out)


def _reduction_first(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """detectron2's key order: a patch merging's ``reduction`` before its ``norm``."""
    keys = list(state_dict)
    for i, key in enumerate(keys):
        if key.endswith('.downsample.reduction.weight'):
            head = key[:-len('reduction.weight')]
            first = next(j for j, k in enumerate(keys) if k.startswith(head))
            keys.insert(first, keys.pop(i))
    return {k: state_dict[k] for k in keys}


def _pos_to_map(pos: torch.Tensor, patch_resolution: Optional[Sequence[int]]) -> torch.Tensor:
    if pos.dim() != 3:
        return pos
    if patch_resolution is None:
        side = int(round(pos.shape[1] ** 0.5))
        if side * side != pos.shape[1]:
            raise ValueError(f'absolute_pos_embed has {pos.shape[1]} positions, not a square '
                             f'grid: give patch_resolution=(H, W)')
        patch_resolution = (side, side)
    h, w = patch_resolution
    return pos.transpose(1, 2).reshape(pos.shape[0], pos.shape[2], h, w).contiguous()


__all__ = ['is_detectron2_swin', 'convert_detectron2_swin', 'revert_detectron2_swin']
