"""mmpretrain / mmcls classifier checkpoints -> the backbone alone.

A classifier's state dict holds ``backbone.*``, ``neck.*`` and ``head.*``; our backbones use
mmpretrain's names, so converting is taking what is under ``backbone.`` (the same as
``prefix='backbone'``).
"""
from typing import Dict, Mapping

import torch

PREFIX = 'backbone.'


def is_mmpretrain_classifier(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Every key is under ``backbone.``/``neck.``/``head.``/``data_preprocessor.`` and some are
    under ``backbone.``."""
    heads = ('backbone.', 'neck.', 'head.', 'data_preprocessor.')
    return any(k.startswith(PREFIX) for k in state_dict) and all(
        k.startswith(heads) for k in state_dict)


def convert_mmpretrain_classifier(
        state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The keys under ``backbone.`` with the prefix removed (or the dict unchanged when it has
    none: a bare mmpretrain backbone state dict is already in our names)."""
    if not any(k.startswith(PREFIX) for k in state_dict):
        return dict(state_dict)
    return {k[len(PREFIX):]: v for k, v in state_dict.items() if k.startswith(PREFIX)}


def revert_mmpretrain_classifier(
        state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our backbone names are mmpretrain's: a backbone state dict goes under ``backbone.`` (the
    layout of an mmpretrain classifier's checkpoint)."""
    return {PREFIX + k: v for k, v in state_dict.items()}
