"""``mmbackbones info``: what a config builds, measured on one real forward pass."""
from typing import Optional, Sequence

from .common import (as_tuple, build_from_config, count_params, default_input_size, make_input,
                     output_names, weights_label)

NECK_TOOLBOXES = ('mmdet', 'mmseg')


def backbone_info(config: str, input_size: Optional[Sequence[int]] = None,
                  cfg_options: Optional[dict] = None, device: str = 'cpu',
                  flops: bool = True, memory: bool = True, neck: Optional[str] = None,
                  seed: int = 0, checkpoint: Optional[str] = None,
                  checkpoint_strict: bool = True) -> dict:
    """Outputs (name, channels, stride, shape), params, FLOPs and forward memory of a config.

    The declared metadata (``out_names``/``out_channels``/``out_strides``) is compared with
    what the forward returns (``mmbackbones.models.base.output_problems``: the count, each
    output's channels and stride); a disagreement is reported in ``mismatches``, one line naming
    the output (the command then fails: detectron2 necks and ``in_channels='auto'`` read the
    declared values).
    """
    import torch

    from .complexity import count_flops, forward_memory, param_bytes

    _, backbone_cfg, model = build_from_config(config, cfg_options, seed, checkpoint,
                                               checkpoint_strict)
    size = tuple(input_size) if input_size else default_input_size(backbone_cfg)
    model.to(device)
    x = make_input(model, size).to(device)
    with torch.no_grad():
        outputs = as_tuple(model(x))
    names = output_names(model, outputs)
    channels = tuple(getattr(model, 'out_channels', ()) or ())
    strides = tuple(getattr(model, 'out_strides', ()) or ())
    rows = []
    for i, (name, out) in enumerate(zip(names, outputs)):
        rows.append(dict(name=name, channels=channels[i] if i < len(channels) else None,
                         stride=strides[i] if i < len(strides) else None,
                         shape=list(out.shape)))
    mismatches = metadata_mismatches(model, x, outputs)
    total, frozen = count_params(model)
    info = dict(
        config=config,
        type=type(model).__name__,
        weights=weights_label(backbone_cfg, checkpoint, seed),
        input_shape=list(x.shape),
        outputs=rows,
        params=total,
        frozen_params=frozen,
        trainable_params=total - frozen,
        param_bytes=param_bytes(model),
        mismatches=mismatches,
    )
    if neck:
        info['neck'] = neck_settings(model, neck)
    if flops:
        info['flops'], info['flops_unsupported_ops'] = count_flops(model, x)
    if memory:
        info['memory_inference'] = forward_memory(model, x, grad=False)
        info['memory_autograd'] = forward_memory(model, x, grad=True)
    return info


def metadata_mismatches(model, x, outputs) -> list:
    """:func:`~mmbackbones.models.base.output_problems` for a backbone with the contract;
    a module without it (no ``out_names``) has nothing declared to compare."""
    if not hasattr(model, 'out_names') or not hasattr(model, 'out_channels'):
        return []
    from ..models.base import output_problems

    return output_problems(model, x, outputs)


def neck_settings(model, toolbox: str) -> dict:
    """What a downstream neck/head config needs to consume the outputs of ``model``.

    The channel list comes from ``mmbackbones.integrations.neck_in_channels`` (what
    ``in_channels='auto'`` resolves to). mmdet: an ``FPN`` neck. mmseg: a multi-input decode head
    (e.g. ``UPerHead``) with ``in_channels`` and ``in_index`` over every output.
    """
    if toolbox not in NECK_TOOLBOXES:
        raise ValueError(f'--neck must be one of {", ".join(NECK_TOOLBOXES)}; got {toolbox!r}')
    from ..integrations import neck_in_channels

    channels = [int(c) for c in neck_in_channels(model, toolbox)]
    if toolbox == 'mmdet':
        return dict(neck=dict(type='FPN', in_channels=channels, out_channels=256,
                              num_outs=5))
    return dict(decode_head=dict(in_channels=channels, in_index=list(range(len(channels)))))


def format_neck_snippet(settings: dict) -> str:
    """``neck=dict(type='FPN', in_channels=[256, 512], ...)`` lines to paste into a config."""
    lines = []
    for key, value in settings.items():
        fields = ', '.join(f'{k}={v!r}' for k, v in value.items())
        lines.append(f'{key}=dict({fields})')
    return '\n'.join(lines)
