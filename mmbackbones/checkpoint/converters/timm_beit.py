"""timm ``beit_*``/``beitv2_*`` state dict <-> mmbackbones/mmpretrain ``BEiTViT`` names (also
the official BEiT fine-tuned checkpoints, which timm's names follow).

=======================================  ==========================================
timm                                     ours (= mmpretrain's = mmseg's)
=======================================  ==========================================
``patch_embed.proj.*``                   ``patch_embed.projection.*``
``blocks.{i}.norm1.*`` / ``norm2.*``     ``layers.{i}.ln1.*`` / ``ln2.*``
``blocks.{i}.attn.*``                    ``layers.{i}.attn.*`` (same leaves)
``blocks.{i}.mlp.fc1.*`` / ``fc2.*``     ``layers.{i}.ffn.layers.0.0.*`` / ``ffn.layers.1.*``
``blocks.{i}.gamma_1`` / ``gamma_2``     ``layers.{i}.gamma_1`` / ``gamma_2``
``norm.*`` (``use_fc_norm=False``)       ``ln1.*`` (``final_norm=True``)
``fc_norm.*`` (mean pooling)             ``ln2.*`` (``out_type='avg_featmap'``)
``cls_token``, ``pos_embed``,            the same
``rel_pos_bias.*`` (shared table)
``head.*``                               dropped
=======================================  ==========================================

``relative_position_index`` buffers are dropped both ways (timm does not save them, our model
rebuilds them). timm's ``beit_base_patch16_224`` is ``BEiTViT(arch='base', bias='qv_bias',
layer_scale_init_value=0.1)`` with its defaults (``avg_featmap``, no final norm, LN eps 1e-6).
"""
import re
from typing import Dict, Mapping

import torch

_TO_OURS = (
    (re.compile(r'^patch_embed\.proj\.'), 'patch_embed.projection.'),
    (re.compile(r'^blocks\.(\d+)\.norm1\.'), r'layers.\1.ln1.'),
    (re.compile(r'^blocks\.(\d+)\.norm2\.'), r'layers.\1.ln2.'),
    (re.compile(r'^blocks\.(\d+)\.mlp\.fc1\.'), r'layers.\1.ffn.layers.0.0.'),
    (re.compile(r'^blocks\.(\d+)\.mlp\.fc2\.'), r'layers.\1.ffn.layers.1.'),
    (re.compile(r'^blocks\.(\d+)\.(attn\.|gamma_[12]$)'), r'layers.\1.\2'),
    (re.compile(r'^norm\.'), 'ln1.'),
    (re.compile(r'^fc_norm\.'), 'ln2.'),
    (re.compile(r'^(cls_token|pos_embed|rel_pos_bias\.relative_position_bias_table)$'), r'\1'),
)
_TO_TIMM = (
    (re.compile(r'^patch_embed\.projection\.'), 'patch_embed.proj.'),
    (re.compile(r'^layers\.(\d+)\.ln1\.'), r'blocks.\1.norm1.'),
    (re.compile(r'^layers\.(\d+)\.ln2\.'), r'blocks.\1.norm2.'),
    (re.compile(r'^layers\.(\d+)\.ffn\.layers\.0\.0\.'), r'blocks.\1.mlp.fc1.'),
    (re.compile(r'^layers\.(\d+)\.ffn\.layers\.1\.'), r'blocks.\1.mlp.fc2.'),
    (re.compile(r'^layers\.(\d+)\.(attn\.|gamma_[12]$)'), r'blocks.\1.\2'),
    (re.compile(r'^ln1\.'), 'norm.'),
    (re.compile(r'^ln2\.'), 'fc_norm.'),
    (re.compile(r'^(cls_token|pos_embed|rel_pos_bias\.relative_position_bias_table)$'), r'\1'),
)


def is_timm_beit(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm/official BEiT: timm's patch embedding and blocks with BEiT's layer scale
    (``gamma_1``), q/v biases or relative position tables."""
    if 'patch_embed.proj.weight' not in state_dict:
        return False
    return any(k in state_dict for k in ('blocks.0.gamma_1', 'blocks.0.attn.q_bias',
                                         'blocks.0.attn.relative_position_bias_table',
                                         'rel_pos_bias.relative_position_bias_table'))


def _rename(state_dict, rules, drop, what) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.endswith('relative_position_index') or key.endswith('attn.k_bias') \
                or key.startswith(drop):
            continue
        for pattern, repl in rules:
            if pattern.match(key):
                out[pattern.sub(repl, key, count=1)] = value
                break
        else:
            raise KeyError(f'unexpected key {key!r} in a {what} state dict')
    return out


def convert_timm_beit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain ``BEiTViT`` names; the head dropped; an unknown key is a
    ``KeyError`` naming it (no half loads)."""
    return _rename(state_dict, _TO_OURS, ('head.',), 'timm BEiT')


def revert_timm_beit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``BEiTViT`` names -> timm's (no head). MAE's full ``attn.qkv.bias`` has no timm
    spelling: ``ValueError``."""
    if any(k.endswith('attn.qkv.bias') for k in state_dict):
        raise ValueError('timm BEiT has q/v biases only (attn.q_bias, attn.v_bias): a model with '
                         'bias=True (attn.qkv.bias, mmseg MAE) cannot be written in its layout')
    return _rename(state_dict, _TO_TIMM, (), 'mmbackbones BEiTViT')
