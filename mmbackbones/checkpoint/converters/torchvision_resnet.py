"""torchvision ``resnet*`` / ``resnext*`` / ``wide_resnet*`` state dict -> mmbackbones ``ResNet``.

mmpretrain's (and so our) ResNet kept torchvision's parameter names (``conv1``, ``bn1``,
``layer{1..4}.{j}.conv{k}|bn{k}``, ``downsample.0|1``), so the conversion only drops the
classifier (``fc.*``). Tensors are unchanged.
"""
from typing import Dict, Mapping

import torch

_CLASSIFIER = ('fc.',)


def is_torchvision_resnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """A single-conv stem (``conv1.weight`` + ``bn1``) and ``layer1.0.conv1.weight``."""
    return ('conv1.weight' in state_dict and 'bn1.weight' in state_dict
            and 'layer1.0.conv1.weight' in state_dict)


def convert_torchvision_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A new dict without the classifier; every other key is kept as is."""
    return {k: v for k, v in state_dict.items() if not k.startswith(_CLASSIFIER)}
