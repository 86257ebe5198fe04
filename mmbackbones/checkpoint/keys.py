"""What the checkpoint modules share below the load itself: the mismatch error, key grouping
for messages, unwrapping model wrappers and the ``strict`` values (``state.py`` and ``fit.py``
both import it, so neither imports the other back)."""
from collections import OrderedDict
from contextlib import contextmanager
from functools import partial
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

#: a module attribute: while > 0 the module's ``state_dict()`` is in its own parameter names
OWN_NAMES_FLAG = '_state_dict_in_own_names'


class CheckpointMismatchError(RuntimeError):
    """Checkpoint and module disagree (shapes always; names when ``strict=True``)."""


def _group_of(key: str) -> str:
    parts = key.split('.')
    if len(parts) > 2 and parts[1].isdigit():  # layer1.0.conv1.weight -> layer1.0
        return '.'.join(parts[:2])
    return parts[0] if len(parts) > 1 else key


def group_keys(keys: Sequence[str]) -> 'OrderedDict[str, List[str]]':
    """``{prefix: [keys]}`` grouped by the first name (two when the second is an index)."""
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for key in keys:
        groups.setdefault(_group_of(key), []).append(key)
    return groups


def _group_lines(keys: Sequence[str], max_groups: int = 20) -> List[str]:
    groups = group_keys(keys)
    lines = []
    for i, (prefix, members) in enumerate(groups.items()):
        if i == max_groups:
            rest = sum(len(m) for m in list(groups.values())[max_groups:])
            lines.append(f'    ... {len(groups) - max_groups} more groups ({rest} keys)')
            break
        leaves = sorted({m[len(prefix) + 1:] if m != prefix else m for m in members})
        shown = ', '.join(leaves[:4]) + (', ...' if len(leaves) > 4 else '')
        lines.append(f'    {prefix}.*: {len(members)} ({shown})' if members[0] != prefix
                     else f'    {prefix}')
    return lines


@contextmanager
def own_names(module: nn.Module):
    """Inside, the modules of ``module`` that save their state dict in a host's layout (those
    with a true ``saves_host_layout`` attribute, e.g. ``mmbackbones.detrex.SwinTransformer``,
    whose ``state_dict()`` is detectron2's) give their own parameter names, the names loading
    checks against."""
    marked = [m for m in module.modules() if getattr(m, 'saves_host_layout', False)]
    for m in marked:
        m.__dict__[OWN_NAMES_FLAG] = m.__dict__.get(OWN_NAMES_FLAG, 0) + 1
    try:
        yield
    finally:
        for m in marked:
            m.__dict__[OWN_NAMES_FLAG] -= 1


def save_in_layout(module: nn.Module, revert) -> None:
    """Make ``module.state_dict()`` (alone or inside a model) give ``revert(module, {own names:
    tensors})``, a host's layout (detectron2's Swin, detrex's ConvNeXt), except inside
    :func:`own_names`. ``revert`` is a module-level function (the module stays picklable and
    copyable); the module must load that layout too (a converter of ``converters.CONVERTERS``)."""
    module.__dict__['saves_host_layout'] = True
    module._register_state_dict_hook(partial(_layout_hook, revert=revert))


def _layout_hook(module, state_dict, prefix, local_metadata, revert):
    if module.__dict__.get(OWN_NAMES_FLAG, 0):
        return
    # the module's keys are the last ones when its hook runs: re-adding keeps the order
    ours = {k[len(prefix):]: state_dict.pop(k) for k in
            [k for k in state_dict if k.startswith(prefix)]}
    for key, value in revert(module, ours).items():
        state_dict[prefix + key] = value


def own_state_dict(module: nn.Module, keep_vars: bool = False) -> Dict[str, torch.Tensor]:
    """``module.state_dict()`` in the parameter names of its modules (see :func:`own_names`)."""
    with own_names(module):
        return module.state_dict(keep_vars=keep_vars)


def _unwrap(module: nn.Module) -> nn.Module:
    from mmengine.model import is_model_wrapper
    while is_model_wrapper(module):
        module = module.module
    return module


def check_strict(strict) -> Optional[bool]:
    """``None`` (the fit rule), ``True`` (every key matches) or ``False`` (the opt-out)."""
    if strict is not None and not isinstance(strict, bool):
        raise TypeError(f'strict must be None (default: refuse a load that leaves tensors of the '
                        f'model at init or drops tensors of its modules), True (every key must '
                        f'match) or False (load what matches), got {strict!r}')
    return strict
