"""Checkpoint keys of layers a truncated backbone did not build.

A backbone builds nothing after its last output. Where the skipped layers are entries of one
indexed container (VGG's ``features.N``, Hourglass's ``out_convs.N``) rather than whole stage
modules, a full checkpoint names entries the model does not have; :func:`skip_unbuilt_entries`
registers a load pre-hook that removes exactly those keys (indices from the built length up to
the architecture's full length), so the full checkpoint loads into the truncated model. Any
other key is left for the all-or-nothing check to judge.
"""
import re
from typing import Dict, Tuple

from torch import nn


def unbuilt_key(key: str, containers: Dict[str, Tuple[int, int]]) -> bool:
    """Whether ``key`` (relative to the backbone) is ``<container>.<i>.*`` with
    ``built <= i < full`` for one of ``containers`` (``{name: (built, full)}``)."""
    for name, (built, full) in containers.items():
        match = re.match(re.escape(name) + r'\.(\d+)\.', key)
        if match and built <= int(match.group(1)) < full:
            return True
    return False


def skip_unbuilt_entries(module: nn.Module, containers: Dict[str, Tuple[int, int]]) -> None:
    """Register the pre-hook dropping the keys :func:`unbuilt_key` names (nothing when every
    container is built to its full length)."""
    containers = {k: v for k, v in containers.items() if v[0] < v[1]}
    if not containers:
        return

    def hook(state_dict, prefix, *args):
        for key in [k for k in state_dict if k.startswith(prefix)]:
            if unbuilt_key(key[len(prefix):], containers):
                del state_dict[key]

    module._register_load_state_dict_pre_hook(hook)
