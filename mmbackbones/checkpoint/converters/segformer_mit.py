"""SegFormer MiT encoders from NVlabs' official release (``mit_b0.pth``..``mit_b5.pth`` and the
SegFormer checkpoints, timm-style names) or Hugging Face ``transformers`` (``SegformerModel``,
``SegformerForImageClassification`` / ``...ForSemanticSegmentation``) -> mmbackbones
``MixVisionTransformer`` names (= mmseg's; the mapping facts are those of mmseg's
``tools/model_converters/mit2mmseg.py``, extended to the HF names).

=========================================  ==========================  ===================================
official (NVlabs)                          Hugging Face                ours / mmseg
=========================================  ==========================  ===================================
``patch_embed{i+1}.proj.*``                ``encoder.patch_embeddings.  ``layers.{i}.0.projection.*``
                                           {i}.proj.*``
``patch_embed{i+1}.norm.*``                ``...{i}.layer_norm.*``      ``layers.{i}.0.norm.*``
``block{i+1}.{j}.norm1|norm2.*``           ``encoder.block.{i}.{j}.     ``layers.{i}.1.{j}.norm1|norm2.*``
                                           layer_norm_1|_2.*``
``...attn.q`` + ``attn.kv`` (rows          ``attention.self.query``,    ``...attn.attn.in_proj_weight|bias``
concatenated)                              ``key``, ``value``           (``[q; k; v]`` rows)
``...attn.proj.*``                         ``attention.output.dense.*`` ``...attn.attn.out_proj.*``
``...attn.sr.*``, ``attn.norm.*``          ``attention.self.sr.*``,     ``...attn.sr.*``, ``attn.norm.*``
                                           ``attention.self.layer_norm``
``...mlp.fc1`` (Linear -> 1x1 conv)        ``mlp.dense1``               ``...ffn.layers.0.*``
``...mlp.dwconv.dwconv.*``                 ``mlp.dwconv.dwconv.*``      ``...ffn.layers.1.*``
``...mlp.fc2`` (Linear -> 1x1 conv)        ``mlp.dense2``               ``...ffn.layers.4.*``
``norm{i+1}.*``                            ``encoder.layer_norm.{i}.*`` ``layers.{i}.2.*``
``head.*`` (classifier): dropped           ``classifier.*``,
                                           ``decode_head.*``: dropped
=========================================  ==========================  ===================================

HF files may carry a ``segformer.`` prefix (the task models), which is removed. Linear weights
``(out, in)`` become 1x1 conv weights ``(out, in, 1, 1)``. Numbers: HF builds every LayerNorm
with ``eps=1e-5`` and NVlabs its patch-embedding norms with ``1e-5`` (the rest ``1e-6``, mmseg's
default for all): build ``norm_cfg=dict(type='LN', eps=1e-5)`` to equal HF exactly; the
difference to mmseg's ``1e-6`` is below float32 noise for trained weights.
"""
import re
from typing import Dict, Mapping

import torch

_OFFICIAL = {  # (regex on the official key, replacement)
    'patch': (re.compile(r'^patch_embed(\d+)\.(proj|norm)\.(weight|bias)$')),
    'block': (re.compile(r'^block(\d+)\.(\d+)\.(.+)$')),
    'norm': (re.compile(r'^norm(\d+)\.(weight|bias)$')),
}
_OFFICIAL_BLOCK = {'norm1': 'norm1', 'norm2': 'norm2', 'attn.proj': 'attn.attn.out_proj',
                   'attn.sr': 'attn.sr', 'attn.norm': 'attn.norm', 'mlp.fc1': 'ffn.layers.0',
                   'mlp.dwconv.dwconv': 'ffn.layers.1', 'mlp.fc2': 'ffn.layers.4'}
_HF_BLOCK = {'layer_norm_1': 'norm1', 'layer_norm_2': 'norm2',
             'attention.output.dense': 'attn.attn.out_proj', 'attention.self.sr': 'attn.sr',
             'attention.self.layer_norm': 'attn.norm', 'mlp.dense1': 'ffn.layers.0',
             'mlp.dwconv.dwconv': 'ffn.layers.1', 'mlp.dense2': 'ffn.layers.4'}
_HF_PATCH = re.compile(r'^encoder\.patch_embeddings\.(\d+)\.(proj|layer_norm)\.(weight|bias)$')
_HF_BLOCK_KEY = re.compile(r'^encoder\.block\.(\d+)\.(\d+)\.(.+)$')
_HF_NORM = re.compile(r'^encoder\.layer_norm\.(\d+)\.(weight|bias)$')
_LINEAR_TO_CONV = ('ffn.layers.0.weight', 'ffn.layers.4.weight')


def _is_official(state_dict) -> bool:
    return 'patch_embed1.proj.weight' in state_dict and 'block1.0.attn.q.weight' in state_dict


def _is_hf(state_dict) -> bool:
    return any(k.endswith('encoder.patch_embeddings.0.proj.weight') for k in state_dict) and \
        any(k.endswith('attention.self.query.weight') for k in state_dict)


def is_segformer_mit(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for NVlabs' official MiT/SegFormer layout or HF's ``SegformerModel`` layout."""
    return _is_official(state_dict) or _is_hf(state_dict)


def _block_key(stage: int, block: str, rest: str, table: Dict[str, str], source: str) -> str:
    for old, new in table.items():
        if rest.startswith(old + '.'):
            return f'layers.{stage}.1.{block}.{new}{rest[len(old):]}'
    raise KeyError(f'unexpected key {rest!r} in block {stage}.{block} of a {source} SegFormer '
                   f'MiT state dict (expected one of {sorted(table)} or the q/k/v projections)')


def _fuse_qkv(out: dict, pending: dict, source: str) -> None:
    """``pending[(prefix, 'weight'|'bias')] = [q, k, v]`` -> ``in_proj_weight|bias``."""
    for (prefix, kind), parts in pending.items():
        if any(p is None for p in parts):
            raise KeyError(f'{source} SegFormer MiT state dict: {prefix} has only some of the '
                           f'query/key/value {kind}s')
        out[f'{prefix}in_proj_{kind}'] = torch.cat(parts, dim=0)


def _convert_official(state_dict) -> Dict[str, torch.Tensor]:
    out, pending = {}, {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        match = _OFFICIAL['patch'].match(key)
        if match:
            stage, part, kind = match.groups()
            part = 'projection' if part == 'proj' else 'norm'
            out[f'layers.{int(stage) - 1}.0.{part}.{kind}'] = value
            continue
        match = _OFFICIAL['norm'].match(key)
        if match:
            out[f'layers.{int(match.group(1)) - 1}.2.{match.group(2)}'] = value
            continue
        match = _OFFICIAL['block'].match(key)
        if not match:
            raise KeyError(f'unexpected key {key!r} in an official SegFormer MiT state dict '
                           f'(expected patch_embed*, block*, norm* or head.*)')
        stage, block, rest = int(match.group(1)) - 1, match.group(2), match.group(3)
        qkv = re.fullmatch(r'attn\.(q|kv)\.(weight|bias)', rest)
        if qkv:
            prefix = f'layers.{stage}.1.{block}.attn.attn.'
            parts = pending.setdefault((prefix, qkv.group(2)), [None, None])
            parts[0 if qkv.group(1) == 'q' else 1] = value
            continue
        out[_block_key(stage, block, rest, _OFFICIAL_BLOCK, 'official')] = value
    _fuse_qkv(out, pending, 'official')
    return out


def _convert_hf(state_dict) -> Dict[str, torch.Tensor]:
    out, pending = {}, {}
    for key, value in state_dict.items():
        if key.startswith(('classifier.', 'decode_head.')):
            continue
        key = key[len('segformer.'):] if key.startswith('segformer.') else key
        match = _HF_PATCH.match(key)
        if match:
            stage, part, kind = match.groups()
            part = 'projection' if part == 'proj' else 'norm'
            out[f'layers.{stage}.0.{part}.{kind}'] = value
            continue
        match = _HF_NORM.match(key)
        if match:
            out[f'layers.{match.group(1)}.2.{match.group(2)}'] = value
            continue
        match = _HF_BLOCK_KEY.match(key)
        if not match:
            raise KeyError(f'unexpected key {key!r} in a Hugging Face SegFormer state dict '
                           f'(expected encoder.patch_embeddings/block/layer_norm, classifier or '
                           f'decode_head)')
        stage, block, rest = int(match.group(1)), match.group(2), match.group(3)
        qkv = re.fullmatch(r'attention\.self\.(query|key|value)\.(weight|bias)', rest)
        if qkv:
            prefix = f'layers.{stage}.1.{block}.attn.attn.'
            parts = pending.setdefault((prefix, qkv.group(2)), [None, None, None])
            parts[('query', 'key', 'value').index(qkv.group(1))] = value
            continue
        out[_block_key(stage, block, rest, _HF_BLOCK, 'Hugging Face')] = value
    _fuse_qkv(out, pending, 'Hugging Face')
    return out


def convert_segformer_mit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Return a new dict in ``MixVisionTransformer`` names (see the module table). A key that
    belongs to neither the encoder nor the known heads raises ``KeyError`` naming it."""
    out = _convert_official(state_dict) if _is_official(state_dict) else _convert_hf(state_dict)
    for key, value in out.items():
        if key.endswith(_LINEAR_TO_CONV) and value.dim() == 2:
            out[key] = value.reshape(*value.shape, 1, 1)
    return out
