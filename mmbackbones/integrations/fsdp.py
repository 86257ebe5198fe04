"""Sharded training with PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``).

One FSDP unit per stage of :meth:`BaseBackbone.stem_and_stages` (a transformer block of a ViT,
a residual stage of a ResNet, a stage of Swin/ConvNeXt/RegNet/CSP nets), then the root module,
which holds what is left (the stem, position embeddings, final norms). Each unit's parameters
are gathered just before its forward/backward and freed after, so a rank holds about
``1 / world_size`` of the parameters, gradients and optimizer state between units.

Inside an initialised process group (``gloo`` on CPU, ``nccl`` on GPU)::

    model = fully_shard_backbone(build_backbone(cfg))
    optimizer = torch.optim.AdamW(model.parameters())   # over the local shards (DTensors)
    ...
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                 cpu_offload=True))
    # rank 0: mmbackbones.checkpoint.save_file(state, 'backbone.safetensors'); it loads into an
    # unsharded model through init_cfg=dict(type='Pretrained', checkpoint=...)
"""
from typing import List

from torch import nn


def fsdp_units(model: nn.Module) -> List[nn.Module]:
    """The modules :func:`fully_shard_backbone` makes into FSDP units (before the root): every
    stage of ``model.stem_and_stages()`` after the stem (the stem stays with the root)."""
    stages = getattr(model, 'stem_and_stages', None)
    if stages is None:
        raise TypeError(f'fully_shard_backbone expects an mmbackbones backbone (with '
                        f'stem_and_stages()), got {type(model).__name__}')
    units = [m for m in stages()[1:] if m is not None]
    if not units:
        raise ValueError(f'{type(model).__name__}.stem_and_stages() lists no stage to shard')
    return units


def fully_shard_backbone(model: nn.Module, **fsdp_kwargs) -> nn.Module:
    """Apply ``fully_shard`` to each stage (:func:`fsdp_units`) and then to ``model``; returns
    ``model`` (its class becomes ``FSDP<Class>``). ``fsdp_kwargs`` go to every ``fully_shard``
    call (``mesh``, ``reshard_after_forward``, ``mp_policy``, ...). Needs an initialised
    default process group unless a ``mesh`` is given."""
    from torch.distributed.fsdp import fully_shard
    for unit in fsdp_units(model):
        fully_shard(unit, **fsdp_kwargs)
    fully_shard(model, **fsdp_kwargs)
    return model


__all__ = ['fsdp_units', 'fully_shard_backbone']
