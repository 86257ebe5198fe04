"""Helpers for parity tests against mmpretrain: its modules and its checkpoint layout."""
import pytest
import torch
from torch import nn


def mmpretrain_backbone(name: str):
    """mmpretrain's backbone class ``name`` (the test skips, saying why, without mmpretrain)."""
    pytest.importorskip('mmpretrain', reason='mmpretrain is needed for parity tests')
    from mmpretrain.models import backbones
    return getattr(backbones, name)


def save_as_backbone(weights, path) -> str:
    """Save a module's (or a state dict's) tensors as an mmpretrain classifier checkpoint does:
    ``{'state_dict': {'backbone.<key>': tensor}}``. Returns the path as a string."""
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, str(path))
    return str(path)
