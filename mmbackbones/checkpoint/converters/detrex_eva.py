"""detrex's EVA ViTDet backbones (``EVAViT``: EVA-01, ``detrex.modeling.backbone.eva``;
``EVA02_ViT``: ``eva_02.py``) and EVA-02's official weights <-> our ``VisionTransformer``.

A detrex model keeps the ViT under ``backbone.net.``; a bare backbone (or EVA-02's released
``eva02_*_pt_*_p14to16.pt``) has no prefix. Per block ``blocks.{i}.``:

==========================================  ================================================
detrex / EVA                                mmbackbones (``layers.{i}.``)
==========================================  ================================================
``norm1``, ``norm2``, ``attn.proj``          ``ln1``, ``ln2``, ``attn.proj``
``attn.qkv.weight`` (EVA-01)                 ``attn.qkv.weight``
``attn.q_proj|k_proj|v_proj.weight``         ``attn.qkv.weight`` (stacked ``[q; k; v]``)
(EVA-02)
``attn.q_bias``, ``attn.v_bias``             ``attn.q_bias``, ``attn.v_bias`` (``qkv_bias='qv'``)
``attn.rel_pos_h|w``                         ``attn.rel_pos_h|w``
``gamma_1``, ``gamma_2`` (EVA-01)            ``attn.gamma1.weight``, ``ffn.gamma2.weight``
``mlp.fc1|fc2`` (EVA-01)                     ``ffn.layers.0.0|ffn.layers.1``
``mlp.w1``, ``mlp.w2`` (EVA-02 SwiGLU)       ``ffn.w12`` (stacked ``[w1; w2]``: ``silu(w1 x) *
                                             w2 x``)
``mlp.ffn_ln``, ``mlp.w3``                   ``ffn.norm`` (sub-LN), ``ffn.w3``
``residual.*`` (ViTDet's conv block)         ``residual.*``
``attn.rope.freqs_cos|sin``, ``rope_win.*``, computed, not stored: dropped
``rope_glb.*``, ``rope.*``
==========================================  ================================================

``patch_embed.proj``, ``pos_embed`` (its class entry, ``pretrain_use_cls_token=True``, is dropped
at load by a model without a class token), ``cls_token``, ``norm`` as :mod:`.timm_vit`. The pyramid
(``backbone.simfp_*``) and a detector's other keys are not the ViT's: left out.
"""
import re
from typing import Dict, Mapping

import torch

from .timm_vit import convert_timm_vit

_PREFIXES = ('backbone.net.', 'net.')
_BLOCK = re.compile(r'^blocks\.(\d+)\.(.+)$')
_ROPE = re.compile(r'^(rope|rope_win|rope_glb)\.freqs_(cos|sin)$|^blocks\.\d+\.attn\.rope\.')
# (detrex's name in a block, ours)
_RENAMES = (('gamma_1', 'attn.gamma1.weight'), ('gamma_2', 'ffn.gamma2.weight'),
            ('mlp.ffn_ln.', 'ffn.norm.'), ('mlp.w3.', 'ffn.w3.'), ('residual.', 'residual.'),
            ('attn.q_bias', 'attn.q_bias'), ('attn.v_bias', 'attn.v_bias'))


def _prefix(state_dict: Mapping[str, torch.Tensor]) -> str:
    for prefix in _PREFIXES:
        if prefix + 'patch_embed.proj.weight' in state_dict:
            return prefix
    return ''


def is_detrex_eva(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """EVA-02 (``blocks.0.mlp.w1`` or rope tables) or EVA-01 ViTDet (``q_bias`` with a fused
    ``qkv`` under ``net.``, or with decomposed ``rel_pos_h`` tables), with or without
    ``backbone.net.``; BEiT's relative position bias tables mark another layout."""
    p = _prefix(state_dict)
    if p + 'patch_embed.proj.weight' not in state_dict or \
            p + 'blocks.0.attn.relative_position_bias_table' in state_dict:
        return False
    if p + 'blocks.0.mlp.w1.weight' in state_dict or p + 'rope_glb.freqs_cos' in state_dict:
        return True
    eva01 = p + 'blocks.0.attn.q_bias' in state_dict and p + 'blocks.0.attn.qkv.weight' in \
        state_dict
    return eva01 and (bool(p) or p + 'blocks.0.attn.rel_pos_h' in state_dict)


def convert_detrex_eva(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The ViT's tensors in our names (module table); other keys are left out."""
    p = _prefix(state_dict)
    own = {k[len(p):]: v for k, v in state_dict.items() if k.startswith(p)}
    if not p:
        own = {k: v for k, v in own.items() if not k.startswith(('simfp_', 'backbone.'))}
    sd, done = {}, {}
    for key, value in own.items():
        if _ROPE.match(key):
            continue
        m = _BLOCK.match(key)
        if not m:
            sd[key] = value
            continue
        i, rest = m.groups()
        q = f'blocks.{i}.'
        if rest.startswith(('attn.q_proj.', 'attn.k_proj.', 'attn.v_proj.', 'mlp.w1.',
                            'mlp.w2.')):
            if rest.endswith('weight') and rest.startswith('attn.q_proj.'):
                done[f'layers.{i}.attn.qkv.weight'] = torch.cat(
                    [own[f'{q}attn.{n}_proj.weight'] for n in 'qkv'])
            elif rest.startswith('mlp.w1.'):
                kind = rest[len('mlp.w1.'):]
                done[f'layers.{i}.ffn.w12.{kind}'] = torch.cat(
                    (own[f'{q}mlp.w1.{kind}'], own[f'{q}mlp.w2.{kind}']))
            elif rest.startswith(('attn.q_proj.', 'attn.k_proj.', 'attn.v_proj.')) and \
                    not rest.endswith('weight'):
                raise KeyError(f'unexpected key {key!r}: EVA-02 projections have no bias (its '
                               f'biases are attn.q_bias and attn.v_bias)')
            continue
        for src, dst in _RENAMES:
            if rest == src or (src.endswith('.') and rest.startswith(src)):
                done[f'layers.{i}.{dst}{rest[len(src):]}'] = value
                break
        else:
            sd[key] = value  # timm names: convert_timm_vit renames them
    out = convert_timm_vit(sd)
    out.update(done)
    return out


def revert_detrex_eva(state_dict: Mapping[str, torch.Tensor], prefix: str = 'backbone.net.',
                      cls_entry: bool = True) -> Dict[str, torch.Tensor]:
    """Our names -> detrex's under ``prefix`` (a detrex model's layout, ``convert --to
    detectron2``), without the rope tables (an EVA02_ViT computes them at construction;
    ``mmbackbones.detrex.EVA02_ViT`` adds them to its state dict). A model with a SwiGLU MLP gets
    ``EVA02_ViT``'s names (separate q/k/v projections), any other ``EVAViT``'s. ``pos_embed``
    and the other top-level keys as :mod:`.timm_vit`; with ``cls_entry`` a model without a class
    token gets a zero class entry in ``pos_embed`` (detrex's ``pretrain_use_cls_token=True``)."""
    from .timm_vit import revert_timm_vit
    eva02 = any(re.match(r'^layers\.\d+\.ffn\.w12\.', k) for k in state_dict)
    top, out = {}, {}
    back = [(dst, src) for src, dst in _RENAMES]
    for key, value in state_dict.items():
        m = re.match(r'^layers\.(\d+)\.(.+)$', key)
        if not m:
            top[key] = value
            continue
        i, rest = m.groups()
        q = f'blocks.{i}.'
        if rest == 'attn.qkv.weight' and eva02:
            for name, part in zip('qkv', value.chunk(3)):
                out[f'{q}attn.{name}_proj.weight'] = part
            continue
        if rest.startswith('ffn.w12.'):
            w1, w2 = value.chunk(2)
            kind = rest[len('ffn.w12.'):]
            out[f'{q}mlp.w1.{kind}'], out[f'{q}mlp.w2.{kind}'] = w1, w2
            continue
        for src, dst in back:
            if rest == src or (src.endswith('.') and rest.startswith(src)):
                out[f'{q}{dst}{rest[len(src):]}'] = value
                break
        else:
            top[key] = value
    out.update(revert_timm_vit(top))
    pos = out.get('pos_embed')
    if cls_entry and 'cls_token' not in out and isinstance(pos, torch.Tensor) and pos.dim() == 3:
        out['pos_embed'] = torch.cat((pos.new_zeros(1, 1, pos.shape[2]), pos), dim=1)
    return {prefix + k: v for k, v in out.items()}
