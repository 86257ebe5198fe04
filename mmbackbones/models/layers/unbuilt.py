"""Checkpoint keys of layers a truncated backbone did not build.

A backbone builds nothing after its last output. Where the skipped layers are entries of one
indexed container (VGG's ``features.N``, Hourglass's ``out_convs.N``) rather than whole stage
modules, a full checkpoint names entries the model does not have. :func:`declare_unbuilt_entries`
lists those indices (from the built length up to the architecture's full length) in the
container's ``checkpoint_not_built``, the declaration the all-or-nothing check
(:mod:`mmbackbones.checkpoint.fit`) reads: those tensors are reported as not built and left out,
any other key is judged as usual.
"""
from typing import Dict, Tuple

from torch import nn


def declare_unbuilt_entries(module: nn.Module, containers: Dict[str, Tuple[int, int]]) -> None:
    """For each ``{name: (built, full)}``, declare entries ``built..full - 1`` of the child
    container ``name`` as not built (nothing when it is built to its full length)."""
    for name, (built, full) in containers.items():
        getattr(module, name).checkpoint_not_built = tuple(str(i) for i in range(built, full))
