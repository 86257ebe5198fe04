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

    cfg, backbone_cfg, model = build_from_config(config, cfg_options, seed, checkpoint,
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
        model_cfg = cfg.get('model') if hasattr(cfg, 'get') else None
        info['neck'] = neck_settings(model, neck, model_cfg if isinstance(model_cfg, dict)
                                     else None)
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


def neck_settings(model, toolbox: str, model_cfg: Optional[dict] = None) -> dict:
    """What a downstream neck/head config needs to consume the outputs of ``model``.

    The channel list comes from ``mmbackbones.integrations.neck_in_channels`` (what
    ``in_channels='auto'`` resolves to). mmdet: an ``FPN`` neck. mmseg: every head that reads the
    backbone: ``decode_head`` and ``auxiliary_head`` (a dict or a list of them) of
    ``model_cfg`` (the config's ``model``) with their own ``in_index``, else a multi-input
    decode head over every output and an auxiliary head on the second-to-last output (mmseg's
    layout: ``FCNHead`` with ``in_index=2`` of a ResNet's four). A config with a ``neck`` gets
    the neck's ``in_channels`` (its heads read the neck).
    """
    if toolbox not in NECK_TOOLBOXES:
        raise ValueError(f'--neck must be one of {", ".join(NECK_TOOLBOXES)}; got {toolbox!r}')
    from ..integrations import neck_in_channels

    channels = [int(c) for c in neck_in_channels(model, toolbox)]
    if toolbox == 'mmdet':
        return dict(neck=dict(type='FPN', in_channels=channels, out_channels=256,
                              num_outs=5))
    cfg = model_cfg if isinstance(model_cfg, dict) else {}
    if isinstance(cfg.get('neck'), (dict, list)):
        neck = cfg['neck'][0] if isinstance(cfg['neck'], list) else cfg['neck']
        return dict(neck=dict(type=neck.get('type', 'FPN'), in_channels=channels))
    settings = {}
    defaults = dict(decode_head=dict(in_index=list(range(len(channels)))),
                    auxiliary_head=dict(in_index=max(len(channels) - 2, 0)))
    for key, default in defaults.items():
        heads = cfg.get(key, default if not cfg.get('decode_head') else None)
        if not heads:
            continue
        entries = [_head_channels(h, channels, key) for h in (
            heads if isinstance(heads, list) else [heads])]
        settings[key] = entries if isinstance(heads, list) else entries[0]
    return settings


def _head_channels(head: dict, channels, where: str) -> dict:
    """``dict(in_channels=..., in_index=...)`` of one mmseg head reading the backbone; a head
    without ``in_index`` reads the last output (mmseg's default, ``in_index=-1``)."""
    index = head.get('in_index', -1)
    try:
        if isinstance(index, (list, tuple)):
            return dict(in_channels=[channels[i] for i in index], in_index=list(index))
        return dict(in_channels=channels[index], in_index=index)
    except (IndexError, TypeError):
        raise ValueError(f'{where}.in_index={index!r} does not select outputs of a backbone '
                         f'with {len(channels)} outputs (channels {channels})') from None


def format_neck_snippet(settings: dict) -> str:
    """``neck=dict(type='FPN', in_channels=[256, 512], ...)`` lines to paste into a config (a
    list of heads as ``key=[dict(...), ...]``)."""

    def one(value: dict) -> str:
        return 'dict(' + ', '.join(f'{k}={v!r}' for k, v in value.items()) + ')'

    lines = []
    for key, value in settings.items():
        text = '[' + ', '.join(one(v) for v in value) + ']' if isinstance(value, list) \
            else one(value)
        lines.append(f'{key}={text}')
    return '\n'.join(lines)
