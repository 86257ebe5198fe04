"""timm ``poolformer_s12|s24|s36|m36|m48`` (timm's MetaFormer) state dict -> mmbackbones
(= mmpretrain) ``PoolFormer`` names (keys in, keys out).

==============================================  ===========================================
timm                                            mmpretrain / mmbackbones
==============================================  ===========================================
``stem.conv.*``                                 ``patch_embed.proj.*``
``stages.{i}.downsample.conv.*`` (i >= 1)       ``network.{2i - 1}.proj.*``
``stages.{i}.blocks.{j}.norm1|norm2|mlp.*``     ``network.{2i}.{j}.norm1|norm2|mlp.*``
``stages.{i}.blocks.{j}.layer_scale1.scale``    ``network.{2i}.{j}.layer_scale_1`` (``2``: ``_2``)
``head.norm.*``                                 ``norm6.*`` (the last stage's output norm)
``head.fc.*``                                   dropped (classifier)
==============================================  ===========================================

``network`` is mmpretrain's list of positions (stage, downsample, stage, ...). The final norm is
the official PoolFormer's ``norm``, which mmpretrain (and the official model) apply to the last
feature map; timm applies it after global pooling, so only the backbone's last output differs
from timm's ``forward_features`` by that norm. PoolFormer v2, ConvFormer and CAFormer
(``token_mixer`` weights, no layer scale, ``res_scale``) are other networks: their keys raise
``KeyError``.
"""
import re
from typing import Dict, Mapping

import torch

_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.(norm1|norm2|mlp|layer_scale1|layer_scale2)'
                    r'\.(.+)$')
_DOWN = re.compile(r'^stages\.(\d+)\.downsample\.conv\.(.+)$')


def is_timm_poolformer(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """timm's MetaFormer layout: ``stem.conv.weight`` and ``stages.0.blocks.0.mlp.fc1``."""
    return 'stem.conv.weight' in state_dict and \
        'stages.0.blocks.0.mlp.fc1.weight' in state_dict


def convert_timm_poolformer(state_dict: Mapping[str, torch.Tensor]
                            ) -> Dict[str, torch.Tensor]:
    """A new dict with mmpretrain PoolFormer keys; unknown keys raise ``KeyError``."""
    stages = {int(k.split('.')[1]) for k in state_dict if k.startswith('stages.')}
    last = 2 * max(stages) if stages else 6
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.fc.'):
            continue
        block, down = _BLOCK.match(key), _DOWN.match(key)
        if key.startswith('stem.conv.'):
            new = 'patch_embed.proj.' + key[len('stem.conv.'):]
        elif key.startswith('head.norm.'):
            new = f'norm{last}.' + key[len('head.norm.'):]
        elif down:
            new = f'network.{2 * int(down.group(1)) - 1}.proj.{down.group(2)}'
        elif block:
            stage, index, part, rest = block.groups()
            if part.startswith('layer_scale'):
                if rest != 'scale':
                    raise KeyError(f'unexpected key {key!r} in a timm PoolFormer state dict')
                new = f'network.{2 * int(stage)}.{index}.layer_scale_{part[-1]}'
            else:
                new = f'network.{2 * int(stage)}.{index}.{part}.{rest}'
        else:
            raise KeyError(f'unexpected key {key!r} in a timm PoolFormer state dict (PoolFormer '
                           f'v2, ConvFormer and CAFormer have no counterpart in mmpretrain\'s '
                           f'PoolFormer)')
        out[new] = value
    for key in state_dict:
        if key.endswith('.mlp.fc1.weight') and key.startswith('stages.'):
            scale = key[:-len('mlp.fc1.weight')] + 'layer_scale1.scale'
            if scale not in state_dict:
                raise KeyError(f'{key[:-len(".mlp.fc1.weight")]} has no layer_scale1 (PoolFormer '
                               f'v2/ConvFormer/CAFormer): mmpretrain\'s PoolFormer blocks have one')
    return out
