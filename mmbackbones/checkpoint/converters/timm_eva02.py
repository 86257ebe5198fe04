"""timm ``eva02_*`` (EVA-02's official layout as timm stores it) -> our ``VisionTransformer``.

================================================  ==========================================
timm ``Eva``                                      mmbackbones (``arch='eva02-*'``)
================================================  ==========================================
``blocks.{i}.attn.qkv.weight`` + ``q_bias``,       ``layers.{i}.attn.qkv.weight|bias`` (the key
``v_bias`` (fused; no key bias)                   bias zeros: it shifts every score of a query
                                                  alike, the softmax ignores it)
``blocks.{i}.attn.q_proj|k_proj|v_proj.*``        ``layers.{i}.attn.qkv.*`` (stacked [q; k; v])
``blocks.{i}.mlp.fc1_g|fc1_x.*``                  ``layers.{i}.ffn.w12.*`` (stacked [gate; x])
``blocks.{i}.mlp.norm.*`` (sub-LN)                ``layers.{i}.ffn.norm.*``
``blocks.{i}.mlp.fc1|fc2.*`` (packed SwiGLU)       ``layers.{i}.ffn.w12|w3.*``
``blocks.{i}.mlp.fc2.*`` (sub-LN SwiGLU)          ``layers.{i}.ffn.w3.*``
everything else                                   as :mod:`.timm_vit`
================================================  ==========================================
"""
import re
from typing import Dict, Mapping

import torch

from .timm_vit import convert_timm_vit

_BLOCK = re.compile(r'^blocks\.(\d+)\.(.*)$')


def is_timm_eva02(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm's Eva layout: ``blocks.0.attn.q_bias`` / ``q_proj`` or a ``fc1_g`` SwiGLU."""
    return 'patch_embed.proj.weight' in state_dict and any(
        k in state_dict for k in ('blocks.0.attn.q_bias', 'blocks.0.attn.q_proj.weight',
                                  'blocks.0.mlp.fc1_g.weight'))


def convert_timm_eva02(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict in our names (module table)."""
    sd = dict(state_dict)
    indices = sorted({int(m.group(1)) for m in map(_BLOCK.match, sd) if m})
    for i in indices:
        p = f'blocks.{i}.'
        if p + 'attn.q_proj.weight' in sd:
            q, k, v = (sd.pop(f'{p}attn.{n}_proj.weight') for n in 'qkv')
            sd[p + 'attn.qkv.weight'] = torch.cat((q, k, v))
            qb, vb = sd.pop(p + 'attn.q_proj.bias', None), sd.pop(p + 'attn.v_proj.bias', None)
            sd.pop(p + 'attn.k_proj.bias', None)
            if qb is not None and vb is not None:
                sd[p + 'attn.q_bias'], sd[p + 'attn.v_bias'] = qb, vb
        if p + 'attn.q_bias' in sd:
            qb, vb = sd.pop(p + 'attn.q_bias'), sd.pop(p + 'attn.v_bias')
            sd.pop(p + 'attn.k_bias', None)
            sd[p + 'attn.qkv.bias'] = torch.cat((qb, torch.zeros_like(qb), vb))
        if p + 'mlp.fc1_g.weight' in sd:
            for kind in ('weight', 'bias'):
                g, x = sd.pop(f'{p}mlp.fc1_g.{kind}', None), sd.pop(f'{p}mlp.fc1_x.{kind}', None)
                if g is not None and x is not None:
                    sd[f'{p}ffn.w12.{kind}'] = torch.cat((g, x))
                w3 = sd.pop(f'{p}mlp.fc2.{kind}', None)
                if w3 is not None:
                    sd[f'{p}ffn.w3.{kind}'] = w3
                norm = sd.pop(f'{p}mlp.norm.{kind}', None)
                if norm is not None:
                    sd[f'{p}ffn.norm.{kind}'] = norm
    # the renamed ffn.*/qkv keys pass through convert_timm_vit's block renames unchanged
    return convert_timm_vit(sd)


def revert_timm_eva02(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our EVA-02 names -> timm's fused-qkv ``Eva`` (``qkv_fused=True``; the key bias dropped:
    it does not change any output). Sub-LN models get ``fc1_g``/``fc1_x``/``norm``/``fc2``,
    others the packed ``fc1``/``fc2``."""
    from .timm_vit import revert_timm_vit
    sd, extra = {}, {}
    for key, value in state_dict.items():
        m = re.match(r'^layers\.(\d+)\.(attn\.qkv\.bias|ffn\.(w12|w3|norm)\.(weight|bias))$', key)
        if not m:
            sd[key] = value
            continue
        i, rest = m.group(1), m.group(2)
        p = f'blocks.{i}.'
        if rest == 'attn.qkv.bias':
            q, _, v = value.chunk(3)
            extra[p + 'attn.q_bias'], extra[p + 'attn.v_bias'] = q, v
            continue
        kind = m.group(4)
        sub_ln = f'layers.{i}.ffn.norm.weight' in state_dict
        if m.group(3) == 'w12':
            if sub_ln:
                g, x = value.chunk(2)
                extra[f'{p}mlp.fc1_g.{kind}'], extra[f'{p}mlp.fc1_x.{kind}'] = g, x
            else:
                extra[f'{p}mlp.fc1.{kind}'] = value
        elif m.group(3) == 'w3':
            extra[f'{p}mlp.fc2.{kind}'] = value
        else:
            extra[f'{p}mlp.norm.{kind}'] = value
    out = revert_timm_vit(sd)
    out.update(extra)
    return out
