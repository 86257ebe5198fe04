"""timm's ``pvt_v2_b0``..``pvt_v2_b5`` <-> mmbackbones ``PyramidVisionTransformerV2`` names
(= mmdet's).

======================================  ==============================================
timm                                    ours / mmdet
======================================  ==============================================
``patch_embed.proj|norm.*``             ``layers.0.0.projection|norm.*``
``stages.{i}.downsample.proj|norm.*``   ``layers.{i}.0.projection|norm.*`` (i >= 1)
``stages.{i}.blocks.{j}.norm1|norm2``   ``layers.{i}.1.{j}.norm1|norm2``
``...attn.q`` + ``attn.kv``             ``...attn.attn.in_proj_weight|bias`` (rows joined)
``...attn.proj``                        ``...attn.attn.out_proj``
``...attn.sr``, ``attn.norm``           the same names
``...mlp.fc1`` / ``mlp.fc2`` (Linear)   ``...ffn.layers.0`` / ``.4`` (1x1 conv)
``...mlp.dwconv``                       ``...ffn.layers.1``
``stages.{i}.norm``                     ``layers.{i}.2``
``head.*``                              dropped
======================================  ==============================================

timm's ``pvt_v2_b2_li`` (``linear=True``: ``attn.pool``) has no mmdet counterpart and is refused
naming the key. Numbers: timm's patch-embedding norms use ``eps=1e-5``, mmdet's ``1e-6`` (below
float32 noise for trained weights).
"""
import re
from typing import Dict, Mapping

import torch

from .key_parts import join_q_kv, linear_as_conv1x1, rename_prefix, split_in_proj

_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.(.+)$')
_DOWN = re.compile(r'^stages\.(\d+)\.downsample\.(proj|norm)\.(weight|bias)$')
_NORM = re.compile(r'^stages\.(\d+)\.norm\.(weight|bias)$')
_STEM = re.compile(r'^patch_embed\.(proj|norm)\.(weight|bias)$')
_RENAMES = (('attn.proj.', 'attn.attn.out_proj.'), ('attn.sr.', 'attn.sr.'),
            ('attn.norm.', 'attn.norm.'), ('norm1.', 'norm1.'), ('norm2.', 'norm2.'),
            ('mlp.fc1.', 'ffn.layers.0.'), ('mlp.dwconv.', 'ffn.layers.1.'),
            ('mlp.fc2.', 'ffn.layers.4.'))
_REVERSE = tuple((ours, theirs) for theirs, ours in _RENAMES)


def is_timm_pvt_v2(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return 'patch_embed.proj.weight' in state_dict and \
        'stages.0.blocks.0.attn.q.weight' in state_dict


def convert_timm_pvt_v2(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict in ``PyramidVisionTransformerV2`` names (see the module table)."""
    out, qkv = {}, {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        match = _STEM.match(key) or _DOWN.match(key)
        if match:
            stage = int(match.group(1)) if match.re is _DOWN else 0
            name, kind = match.groups()[-2:]
            out[f'layers.{stage}.0.{"projection" if name == "proj" else "norm"}.{kind}'] = value
            continue
        match = _NORM.match(key)
        if match:
            out[f'layers.{match.group(1)}.2.{match.group(2)}'] = value
            continue
        match = _BLOCK.match(key)
        if not match:
            raise KeyError(f'unexpected key {key!r} in a timm pvt_v2 state dict')
        prefix, rest = f'layers.{match.group(1)}.1.{match.group(2)}.', match.group(3)
        found = re.fullmatch(r'attn\.(q|kv)\.(weight|bias)', rest)
        if found:
            qkv.setdefault((prefix, found.group(2)), {})[found.group(1)] = value
            continue
        new = rename_prefix(rest, _RENAMES)
        if new is None:
            raise KeyError(f'unexpected key {key!r} in a timm pvt_v2 state dict (the linear '
                           f'"_li" variants have no mmdet counterpart)')
        if new in ('ffn.layers.0.weight', 'ffn.layers.4.weight'):
            value = linear_as_conv1x1(value)
        out[prefix + new] = value
    out.update(join_q_kv(qkv, 'timm pvt_v2'))
    return out


def revert_timm_pvt_v2(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Ours -> timm's pvt_v2 names (no head)."""
    out = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if len(parts) < 4 or parts[0] != 'layers':
            raise ValueError(f'{key!r} is not a PyramidVisionTransformerV2 key')
        if parts[4:5] == ['pos_embed'] or parts[-2:-1] == ['3'] and parts[-3] == 'layers':
            raise ValueError(f'{key!r}: timm pvt_v2 has no PVT v1 parts (position embeddings, '
                             f'FFN without depth-wise conv)')
        stage, part = parts[1], parts[2]
        if part == '0':
            name = 'proj' if parts[3] == 'projection' else 'norm'
            head = 'patch_embed' if stage == '0' else f'stages.{stage}.downsample'
            out[f'{head}.{name}.{parts[4]}'] = value
        elif part == '2':
            out[f'stages.{stage}.norm.{parts[3]}'] = value
        else:
            head, rest = f'stages.{stage}.blocks.{parts[3]}.', '.'.join(parts[4:])
            if rest.startswith('attn.attn.in_proj_'):
                out.update(split_in_proj(head, rest.rsplit('_', 1)[1], value))
                continue
            rest = rename_prefix(rest, _REVERSE, default=rest)
            if rest in ('mlp.fc1.weight', 'mlp.fc2.weight'):
                value = value.flatten(1)
            out[head + rest] = value
    return out
