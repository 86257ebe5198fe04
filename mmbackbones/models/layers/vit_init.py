"""The core ViT's default initialisation and its adoption of checkpoint tensors.

* :func:`reset_vit_parameters`: trunc-normal 0.02 linears and position embedding, unit norms,
  zero biases, mmpretrain's/timm's token inits, detectron2's for ViTDet's residual conv blocks;
* :func:`adopt_tensors`: a block's load pre-hook that lets its uninitialised parameters take the
  checkpoint's tensors instead of copying them (the ViT's Pretrained init).
"""
import math
from typing import Optional

import torch
from torch import nn

from .ffn import LayerScale


def reset_vit_parameters(model: nn.Module, names: Optional[set] = None) -> None:
    """Default init of ``model``'s parameters in ``names`` (all when ``None``)."""
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full = f'{module_name}.{param_name}' if module_name else param_name
            if names is not None and full not in names:
                continue
            with torch.no_grad():
                if '.residual.' in f'.{full}':  # ViTDet's conv block: detectron2's init
                    cut = full.index('residual.') + 9
                    model.get_submodule(full[:cut - 1]).reset_parameter(full[cut:], param)
                elif isinstance(module, LayerScale):
                    param.fill_(module.init_value)
                elif full == 'pos_embed':
                    nn.init.trunc_normal_(param, std=.02)
                elif full == 'cls_token':
                    param.zero_()
                elif full == 'register_tokens':
                    nn.init.normal_(param, std=1e-6)
                elif param_name in ('rel_pos_h', 'rel_pos_w'):
                    if module.rel_pos_zero_init:
                        param.zero_()
                    else:
                        nn.init.trunc_normal_(param, std=.02)
                elif param_name.endswith('bias'):  # also BEiT/EVA's q_bias, v_bias
                    param.zero_()
                elif isinstance(module, nn.Linear):
                    nn.init.trunc_normal_(param, std=.02)
                elif isinstance(module, nn.Conv2d):
                    nn.init.kaiming_uniform_(param, a=math.sqrt(5))
                elif param.dim() == 1:  # norm weights
                    param.fill_(1.)
                else:
                    nn.init.trunc_normal_(param, std=.02)


def adopt_tensors(module, state_dict, prefix, *args, adopt):
    """A block's load pre-hook (the ViT's ``_init_from_checkpoint``): its pending parameters
    take the checkpoint's tensors (same shape, dtype, device, contiguous), so the ``copy_`` of
    the load that follows copies nothing."""
    for name, param in module._parameters.items():
        value = state_dict.get(prefix + name)
        if param is None or id(param) not in adopt or not isinstance(value, torch.Tensor) or \
                isinstance(value, nn.Parameter) or value.shape != param.shape or \
                value.dtype != param.dtype or value.device != param.device or \
                not value.is_contiguous() or value.requires_grad:
            continue
        torch.utils.swap_tensors(param, nn.Parameter(value, requires_grad=param.requires_grad))
        adopt.discard(id(param))
