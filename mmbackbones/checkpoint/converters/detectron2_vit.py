"""detectron2 / detrex ViTDet weights -> our ``VisionTransformer`` (+ ``SimpleFeaturePyramid``).

A ViTDet model keeps the ViT under ``backbone.net.`` and the pyramid under ``backbone.simfp_*``
(``.pth`` of detectron2's model zoo, detrex's files; the ``.pkl`` files hold the same names as
numpy arrays). The ViT's names are timm's (``patch_embed.proj``, ``blocks.{i}.norm1``,
``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``) plus ``attn.rel_pos_h|w``:

====================================  ====================================================
detectron2 ``ViT``                    mmbackbones ``VisionTransformer``
====================================  ====================================================
``[backbone.]net.*``                  taken from under the prefix, then :mod:`.timm_vit`'s
                                      renames (``blocks.{i}`` -> ``layers.{i}``, ...)
``blocks.{i}.attn.rel_pos_h|w``       ``layers.{i}.attn.rel_pos_h|w``
``blocks.{i}.residual.*``             ``layers.{i}.residual.*`` (``residual_block_indexes``)
``pos_embed`` (with a class entry,    ``pos_embed``: the class entry is dropped at load
``pretrain_use_cls_token=True``)      by a model built with ``with_cls_token=False``
``backbone.simfp_*``, heads           not the backbone's: dropped (load them into the
                                      neck with :func:`split_detectron2_vitdet`)
====================================  ====================================================
"""
import re
from typing import Dict, Mapping, Tuple

import torch

from .timm_vit import convert_timm_vit, revert_timm_vit

_PREFIXES = ('backbone.net.', 'net.')


def _under_net(state_dict: Mapping[str, torch.Tensor]) -> str:
    for prefix in _PREFIXES:
        if prefix + 'patch_embed.proj.weight' in state_dict:
            return prefix
    return ''


def is_detectron2_vit(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """``[backbone.]net.patch_embed.proj.weight`` with ``blocks.0.attn.qkv``, or a bare ViT with
    decomposed relative position tables (``blocks.0.attn.rel_pos_h``)."""
    prefix = _under_net(state_dict)
    if prefix:
        return prefix + 'blocks.0.attn.qkv.weight' in state_dict
    return 'patch_embed.proj.weight' in state_dict and any(
        re.match(r'^blocks\.\d+\.attn\.rel_pos_h$', k) for k in state_dict)


def split_detectron2_vitdet(state_dict: Mapping[str, torch.Tensor]
                            ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """A whole ViTDet state dict -> ``(ViT in our names, SimpleFeaturePyramid's simfp_* keys)``."""
    neck = {k[len('backbone.'):]: v for k, v in state_dict.items()
            if k.startswith('backbone.simfp_')}
    return convert_detectron2_vit(state_dict), neck


def convert_detectron2_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The ViT's tensors in our names (module table); everything else is left out."""
    prefix = _under_net(state_dict)
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return convert_timm_vit(own)


def revert_detectron2_vit(state_dict: Mapping[str, torch.Tensor], prefix: str = 'backbone.net.',
                          cls_entry: bool = True) -> Dict[str, torch.Tensor]:
    """Our ViT names -> detectron2's, under ``prefix`` (a ViTDet checkpoint's layout). With
    ``cls_entry``, a model without a class token gets a zero class entry in ``pos_embed``:
    detectron2's default ``pretrain_use_cls_token=True`` expects one (and drops it before use).
    ViTDet's residual conv blocks (``layers.{i}.residual.*``) keep their names in ``blocks.{i}``.
    """
    residual = {k: v for k, v in state_dict.items() if re.match(r'^layers\.\d+\.residual\.', k)}
    out = revert_timm_vit({k: v for k, v in state_dict.items() if k not in residual})
    out.update({'blocks.' + k[len('layers.'):]: v for k, v in residual.items()})
    pos = out.get('pos_embed')
    if cls_entry and 'cls_token' not in out and isinstance(pos, torch.Tensor) and pos.dim() == 3:
        out['pos_embed'] = torch.cat((pos.new_zeros(1, 1, pos.shape[2]), pos), dim=1)
    return {prefix + k: v for k, v in out.items()}
