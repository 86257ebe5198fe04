"""What the checkpoint modules share below the load itself: the mismatch error, key grouping
for messages, unwrapping model wrappers and the ``strict`` values (``state.py`` and ``fit.py``
both import it, so neither imports the other back)."""
from collections import OrderedDict
from typing import List, Optional, Sequence

from torch import nn


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
