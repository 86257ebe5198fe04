"""The hosts' default initialisation of the transformer families (MiT, PVT, Twins): without an
``init_cfg``, ``init_weights()`` runs the host's own init function and reports it in mmengine's
one-line init summary, as an ``init_cfg`` entry would be reported."""
import math
from collections import defaultdict
from typing import Callable

from mmengine.model.weight_init import (constant_init, normal_init, trunc_normal_init,
                                        update_init_info)
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .init_report import SAME


def run_host_init(module, init: Callable[[], None], description: str) -> None:
    """``init()`` with mmengine's change tracking around it (as ``BaseModule.init_weights``
    sets it up), then ``module._is_init = True``."""
    top = not hasattr(module, '_params_init_info')
    if top:
        tracked = defaultdict(dict)
        for param in module.parameters():
            tracked[param] = dict(init_info=f'{SAME} of {type(module).__name__}',
                                  tmp_mean_value=param.data.mean().cpu())
        for sub in module.modules():
            sub._params_init_info = tracked
    init()
    update_init_info(module, init_info=description)
    module._is_init = True
    if top:
        module._dump_init_info()
        for sub in module.modules():
            del sub._params_init_info


def trunc_normal_linear_init(module: nn.Module, norms=(nn.LayerNorm,)) -> None:
    """OpenMMLab's init of these families: trunc-normal (std 0.02) Linears with zero bias, unit
    ``norms``, fan-out normal Conv2d with zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_init(m, std=.02, bias=0.)
        elif isinstance(m, norms):
            constant_init(m, val=1.0, bias=0.)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            normal_init(m, mean=0, std=math.sqrt(2.0 / fan_out), bias=0)


ALL_NORMS = (_BatchNorm, nn.GroupNorm, nn.LayerNorm)
