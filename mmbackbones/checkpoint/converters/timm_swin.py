"""timm (and original Microsoft) Swin state dict -> mmbackbones/mmpretrain ``SwinTransformer``
names (keys in, keys out).

==============================================  ==============================================
timm / Microsoft                                mmpretrain / mmbackbones
==============================================  ==============================================
``patch_embed.proj``                            ``patch_embed.projection``
``layers.{i}.blocks.{j}.norm1|norm2``           ``stages.{i}.blocks.{j}.norm1|norm2``
``layers.{i}.blocks.{j}.attn.*``                ``stages.{i}.blocks.{j}.attn.w_msa.*``
``layers.{i}.blocks.{j}.mlp.fc1|fc2``           ``stages.{i}.blocks.{j}.ffn.layers.0.0|1``
``layers.{i}.downsample.*`` (timm >= 0.9)       ``stages.{i-1}.downsample.*``
``layers.{i}.downsample.*`` (Microsoft, old)    ``stages.{i}.downsample.*``
``norm``                                        ``norm{last}``
==============================================  ==============================================

Patch merging concatenates the 2x2 neighbours in another order in timm (``dx, dy, c``) than
mmcv's ``nn.Unfold`` (``c, dy, dx``), so the merging norm and reduction are permuted.
``head.*`` and ``attn_mask`` buffers are dropped; ``relative_position_index`` (a buffer timm does
not save) is added for every bias table, so the result loads strictly.
"""
import re
from typing import Dict, Mapping

import torch

from .key_parts import rename_prefix

from ...models.layers.window_attention import relative_position_index

_BLOCK = re.compile(r'^layers\.(\d+)\.blocks\.(\d+)\.(.+)$')
_DOWNSAMPLE = re.compile(r'^layers\.(\d+)\.downsample\.(.+)$')
_BLOCK_PARTS = (
    ('norm1.', 'norm1.'), ('norm2.', 'norm2.'), ('attn.', 'attn.w_msa.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'), ('mlp.fc2.', 'ffn.layers.1.'),
)


def is_timm_swin(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a timm/Microsoft Swin state dict."""
    return 'patch_embed.proj.weight' in state_dict and any(
        k.startswith('layers.0.blocks.0.attn.relative_position_bias_table') for k in state_dict)


def unfold_order(tensor: torch.Tensor) -> torch.Tensor:
    """Reorder the last dim (``4C``) of a merging weight from timm's ``(dx, dy, c)`` order to
    ``nn.Unfold``'s ``(c, dy, dx)``."""
    c = tensor.shape[-1] // 4
    lead = tensor.shape[:-1]
    t = tensor.reshape(*lead, 2, 2, c)  # ..., dx, dy, c
    t = t.permute(*range(len(lead)), len(lead) + 2, len(lead) + 1, len(lead))
    return t.reshape(*lead, 4 * c).contiguous()


def convert_timm_swin(state_dict: Mapping[str, torch.Tensor],
                      num_stages: int = 4) -> Dict[str, torch.Tensor]:
    """Return a new dict with mmpretrain Swin keys (see the module table).

    ``num_stages`` names the final norm ``norm{num_stages - 1}``. Unknown keys raise ``KeyError``.
    """
    # Microsoft/old-timm checkpoints keep the merging at the end of stage i (layers.0 has one);
    # timm >= 0.9 at the start of stage i + 1 (layers.0 never has one).
    merge_at_end = any(k.startswith('layers.0.downsample.') for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.') or key.endswith('attn_mask'):
            continue
        if key.startswith('patch_embed.proj.'):
            out['patch_embed.projection.' + key[len('patch_embed.proj.'):]] = value
            continue
        if key.startswith('patch_embed.norm.') or key == 'absolute_pos_embed':
            out[key] = value
            continue
        if key.startswith('norm.'):
            out[f'norm{num_stages - 1}.' + key[len('norm.'):]] = value
            continue
        m = _DOWNSAMPLE.match(key)
        if m:
            layer, rest = int(m.group(1)), m.group(2)
            stage = layer if merge_at_end else layer - 1
            if rest in ('reduction.weight', 'norm.weight', 'norm.bias'):
                value = unfold_order(value)
            out[f'stages.{stage}.downsample.{rest}'] = value
            continue
        m = _BLOCK.match(key)
        if m:
            layer, block, rest = m.groups()
            dst = rename_prefix(rest, _BLOCK_PARTS)
            if dst is None:
                raise KeyError(f'unexpected key {key!r} in a timm Swin state dict')
            prefix = f'stages.{layer}.blocks.{block}.'
            out[prefix + dst] = value
            if rest == 'attn.relative_position_bias_table':
                window = (int(round(value.shape[0] ** 0.5)) + 1) // 2
                out.setdefault(prefix + 'attn.w_msa.relative_position_index',
                               relative_position_index((window, window)))
            continue
        raise KeyError(f'unexpected key {key!r} in a timm Swin state dict')
    return out


def fold_order(tensor: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`unfold_order`: ``nn.Unfold``'s ``(c, dy, dx)`` -> timm's
    ``(dx, dy, c)``."""
    c = tensor.shape[-1] // 4
    lead = tensor.shape[:-1]
    t = tensor.reshape(*lead, c, 2, 2)  # ..., c, dy, dx
    t = t.permute(*range(len(lead)), len(lead) + 2, len(lead) + 1, len(lead))
    return t.reshape(*lead, 4 * c).contiguous()


_OUR_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.(.+)$')
_OUR_DOWNSAMPLE = re.compile(r'^stages\.(\d+)\.downsample\.(.+)$')


def revert_timm_swin(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``SwinTransformer`` names -> timm >= 0.9's ``swin_*`` (build it with
    ``num_classes=0``): patch merging at the start of the next stage, in timm's channel order;
    ``relative_position_index`` buffers dropped (timm does not save them). Refused: output norms
    of other stages than the last (timm has one final norm) and an absolute position embedding
    (timm's lives in another shape)."""
    norms = sorted({k.split('.')[0] for k in state_dict if re.match(r'^norm\d+\.', k)})
    if len(norms) > 1:
        raise ValueError(f"timm's SwinTransformer has one final norm; this checkpoint has "
                         f"{', '.join(norms)} (out_indices other than the last stage)")
    if 'absolute_pos_embed' in state_dict:
        raise ValueError("timm's SwinTransformer keeps no absolute position embedding in this "
                         "layout (use_abs_pos_embed=True cannot be written for timm)")
    parts = [(dst, src) for src, dst in _BLOCK_PARTS]
    out, other = {}, []
    for key, value in state_dict.items():
        if key.endswith('relative_position_index'):
            continue
        if key.startswith('patch_embed.projection.'):
            out['patch_embed.proj.' + key[len('patch_embed.projection.'):]] = value
        elif key.startswith('patch_embed.norm.'):
            out[key] = value
        elif re.match(r'^norm\d+\.', key):
            out['norm.' + key.split('.', 1)[1]] = value
        elif _OUR_DOWNSAMPLE.match(key):
            stage, rest = _OUR_DOWNSAMPLE.match(key).groups()
            if rest in ('reduction.weight', 'norm.weight', 'norm.bias'):
                value = fold_order(value)
            out[f'layers.{int(stage) + 1}.downsample.{rest}'] = value
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
        raise ValueError(f"timm's SwinTransformer has no place for {len(other)} key(s) of this "
                         f"checkpoint: {', '.join(other[:5])}")
    return out
