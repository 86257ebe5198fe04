"""The official PVT v1/v2 releases (``whai362/PVT``: ``pvt_tiny.pth``..``pvt_large.pth``,
``pvt_v2_b0.pth``..``pvt_v2_b5.pth``; what mmdet's ``convert_weights=True`` converts with its
``pvt_convert``) <-> mmbackbones ``PyramidVisionTransformer(V2)`` names (= mmdet's).

=====================================  ==================================================
official                               ours / mmdet
=====================================  ==================================================
``patch_embed{i+1}.proj|norm.*``       ``layers.{i}.0.projection|norm.*``
``pos_embed{i+1}`` (v1)                ``layers.{i}.1.0.pos_embed`` (stage 4: the class
                                       token's row of a 50-token grid dropped)
``block{i+1}.{j}.norm1|norm2.*``       ``layers.{i}.1.{j + v1}.norm1|norm2.*``
``...attn.q`` + ``attn.kv``            ``...attn.attn.in_proj_weight|bias`` (rows joined)
``...attn.proj.*``                     ``...attn.attn.out_proj.*``
``...attn.sr.*``, ``attn.norm.*``      the same names
``...mlp.fc1`` (Linear)                ``...ffn.layers.0`` (1x1 conv)
``...mlp.dwconv.dwconv.*`` (v2)        ``...ffn.layers.1.*``
``...mlp.fc2`` (Linear)                ``...ffn.layers.4`` (v2) / ``.3`` (v1) (1x1 conv)
``norm{i+1}.*`` (v2)                   ``layers.{i}.2.*``
``head.*``, ``norm.*`` (v1's last      dropped (as mmdet does: its v1 has no stage norms)
norm), ``cls_token``
=====================================  ==================================================

``v1`` is 1 when the file holds position embeddings (v1), else 0. The "linear" v2 files
(``pvt_v2_b2_li``: ``attn.pool``) have no mmdet counterpart and are refused naming the key.
"""
import re
from typing import Dict, Mapping

import torch

from .key_parts import join_q_kv, linear_as_conv1x1, rename_prefix, split_in_proj

_BLOCK = re.compile(r'^block(\d+)\.(\d+)\.(.+)$')
_PATCH = re.compile(r'^patch_embed(\d+)\.(proj|norm)\.(weight|bias)$')
_NORM = re.compile(r'^norm(\d+)\.(weight|bias)$')
_POS = re.compile(r'^pos_embed(\d+)$')
_RENAMES = (('attn.proj.', 'attn.attn.out_proj.'), ('attn.sr.', 'attn.sr.'),
            ('attn.norm.', 'attn.norm.'), ('norm1.', 'norm1.'), ('norm2.', 'norm2.'),
            ('mlp.fc1.', 'ffn.layers.0.'), ('mlp.dwconv.dwconv.', 'ffn.layers.1.'))
_REVERSE = tuple((ours, theirs) for theirs, ours in _RENAMES)


def is_official_pvt(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for the official PVT v1/v2 layout (``patch_embed1``, ``block1.0.attn.q``)."""
    return 'patch_embed1.proj.weight' in state_dict and 'block1.0.attn.q.weight' in state_dict


def convert_official_pvt(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict in ``PyramidVisionTransformer(V2)`` names (see the module table)."""
    v1 = int(any(_POS.match(k) for k in state_dict))
    conv_ffn = any('.mlp.dwconv.' in k for k in state_dict)
    out, qkv = {}, {}
    for key, value in state_dict.items():
        if key.startswith(('head.', 'norm.')) or key == 'cls_token':
            continue
        match = _POS.match(key)
        if match:
            stage = int(match.group(1)) - 1
            if stage == 3 and value.dim() == 3 and value.shape[1] == 50:
                value = value[:, 1:]  # the class token's position
            out[f'layers.{stage}.1.0.pos_embed'] = value
            continue
        match = _PATCH.match(key)
        if match:
            part = 'projection' if match.group(2) == 'proj' else 'norm'
            out[f'layers.{int(match.group(1)) - 1}.0.{part}.{match.group(3)}'] = value
            continue
        match = _NORM.match(key)
        if match:
            out[f'layers.{int(match.group(1)) - 1}.2.{match.group(2)}'] = value
            continue
        match = _BLOCK.match(key)
        if not match:
            raise KeyError(f'unexpected key {key!r} in an official PVT state dict (expected '
                           f'patch_embed*, pos_embed*, block*, norm*, cls_token or head.*)')
        stage, index, rest = int(match.group(1)) - 1, int(match.group(2)) + v1, match.group(3)
        prefix = f'layers.{stage}.1.{index}.'
        found = re.fullmatch(r'attn\.(q|kv)\.(weight|bias)', rest)
        if found:
            qkv.setdefault((prefix, found.group(2)), {})[found.group(1)] = value
            continue
        if rest.startswith('mlp.fc2.'):
            new = f'ffn.layers.{4 if conv_ffn else 3}.' + rest[len('mlp.fc2.'):]
        else:
            new = rename_prefix(rest, _RENAMES)
            if new is None:
                raise KeyError(f'unexpected key {key!r} in an official PVT state dict (the '
                               f'"linear" PVTv2 variants have no mmdet counterpart)')
        if new in ('ffn.layers.0.weight', 'ffn.layers.3.weight', 'ffn.layers.4.weight'):
            value = linear_as_conv1x1(value)
        out[prefix + new] = value
    out.update(join_q_kv(qkv, 'official PVT'))
    return out


def revert_official_pvt(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Ours -> the official layout (v1 when position embeddings are present; its stage-4
    embedding is written without the class-token row, which mmdet never uses)."""
    v1 = int(any(k.endswith('.pos_embed') for k in state_dict))
    out = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if len(parts) < 4 or parts[0] != 'layers':
            raise ValueError(f'{key!r} is not a PyramidVisionTransformer key')
        stage, part = int(parts[1]) + 1, parts[2]
        if part == '0':
            name = 'proj' if parts[3] == 'projection' else 'norm'
            out[f'patch_embed{stage}.{name}.{parts[4]}'] = value
        elif part == '2':
            out[f'norm{stage}.{parts[3]}'] = value
        elif parts[4] == 'pos_embed':
            out[f'pos_embed{stage}'] = value
        else:
            head, rest = f'block{stage}.{int(parts[3]) - v1}.', '.'.join(parts[4:])
            if rest.startswith('attn.attn.in_proj_'):
                out.update(split_in_proj(head, rest.rsplit('_', 1)[1], value))
                continue
            if rest.startswith(('ffn.layers.3.', 'ffn.layers.4.')):
                rest = 'mlp.fc2.' + rest.split('.', 3)[3]
            else:
                rest = rename_prefix(rest, _REVERSE, default=rest)
            if rest in ('mlp.fc1.weight', 'mlp.fc2.weight'):
                value = value.flatten(1)
            out[head + rest] = value
    return out
