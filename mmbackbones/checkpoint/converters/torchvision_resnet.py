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


def revert_torchvision_resnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our ``ResNet``/``ResNeXt`` names -> torchvision's (the same; build the torchvision model
    with ``fc = nn.Identity()``). A deep stem (``stem.*``: ResNetV1c/V1d), an avg-down shortcut
    (``downsample.2``: ResNetV1d) or any other key torchvision's ResNet lacks is refused."""
    import re
    known = re.compile(r'^(conv1|bn1|layer\d+\.\d+\.(conv[123]|bn[123]|downsample\.[01]))\.'
                       r'(weight|bias|running_mean|running_var|num_batches_tracked)$')
    if any(k.startswith('stem.') for k in state_dict):
        raise ValueError("torchvision's ResNet has a one-conv stem; this checkpoint has a deep "
                         "stem (stem.0/1/2: ResNetV1c/ResNetV1d): use --to timm (resnet*d) or "
                         "--to mmdet/mmseg")
    other = [k for k in state_dict if not known.match(k)]
    if other:
        raise ValueError(f"torchvision's ResNet has no place for {len(other)} key(s) of this "
                         f"checkpoint (avg-down shortcuts, GroupNorm, DCN, plugins, ...): "
                         f"{', '.join(other[:5])}")
    return dict(state_dict)
