"""Helpers for mmdet / mmseg users: the channel lists their necks and heads need.

Switching the backbone of an mmdet/mmseg config means changing ``neck.in_channels`` (and in
mmseg the decode heads' ``in_channels``). These helpers compute them from the backbone config
itself (the backbone is built on the ``meta`` device: no memory, no weights, no forward), and
:func:`fill_auto_in_channels` replaces ``in_channels='auto'`` in a whole downstream model config
before mmdet/mmseg builds it.

Config-only (mmdet's/mmseg's own ``tools/train.py``, no Python of yours): the model type
``mmbackbones.FillAutoInChannels`` (registered when ``custom_imports`` imports
``mmbackbones``) fills ``in_channels='auto'`` and builds the model it wraps, named by
``model_type``::

    custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)
    model = dict(type='mmbackbones.FillAutoInChannels', model_type='EncoderDecoder',
                 decode_head=dict(in_channels='auto'), auxiliary_head=dict(in_channels='auto'))

(merged into a ``_base_`` model, only ``type`` and ``model_type`` are new).

Nothing here imports mmdet or mmseg.
"""
import copy
import os
from typing import List, Union

import torch
from mmengine.config import Config, ConfigDict
from torch import nn

STYLES = ('mmdet', 'mmseg')
AUTO = 'auto'


def _plain(cfg):
    if isinstance(cfg, ConfigDict):
        return cfg.to_dict()
    if isinstance(cfg, dict):
        return copy.deepcopy(dict(cfg))
    return cfg


def _backbone_cfg(source) -> dict:
    """The backbone config of a config path, a ``Config``, a full model dict or a backbone dict."""
    from ..builder import backbone_cfg_from_config, load_config
    if isinstance(source, (str, os.PathLike)):
        source = load_config(source)
    if isinstance(source, Config):
        return _plain(backbone_cfg_from_config(source))
    cfg = _plain(source)
    if not isinstance(cfg, dict):
        raise TypeError(f'expected a backbone config dict, a downstream config (path or Config) '
                        f'or a built backbone, got {type(source).__name__}')
    if isinstance(cfg.get('backbone'), dict):  # a detector/segmentor ``model`` dict
        cfg = cfg['backbone']
    return cfg


def _build_for_metadata(cfg: dict) -> nn.Module:
    """Build a backbone only to read its metadata: on ``meta`` when the family allows it."""
    from ..builder import build_backbone
    cfg = copy.deepcopy(cfg)
    cfg.pop('init_cfg', None)  # never load a checkpoint just to count channels
    if cfg.get('pretrained') is True:
        cfg['pretrained'] = False  # timm-style wrappers would download weights
    try:
        with torch.device('meta'):
            return build_backbone(copy.deepcopy(cfg))
    except Exception:  # noqa: BLE001
        # Some families read tensor values in __init__ (.tolist() of drop-path rates), which
        # meta tensors refuse; a wrong config raises the same error again here, on CPU.
        return build_backbone(cfg)


def _backbone_module(source) -> nn.Module:
    if isinstance(source, nn.Module):
        return source
    return _build_for_metadata(_backbone_cfg(source))


def backbone_out_channels(source) -> List[int]:
    """``out_channels`` of a backbone given as a built module, a config dict, a downstream model
    dict, a ``Config`` or a config path."""
    return _out_channels(_backbone_module(source))


def _out_channels(backbone: nn.Module) -> List[int]:
    channels = getattr(backbone, 'out_channels', None)
    if not channels:
        raise TypeError(f'{type(backbone).__name__} does not report out_channels; it is not an '
                        f'mmbackbones backbone')
    return [int(c) for c in channels]


def neck_in_channels(backbone_cfg, style: str = 'mmdet') -> List[int]:
    """The ``in_channels`` list a downstream neck needs on top of ``backbone_cfg``.

    ``style='mmdet'``: the list for ``model.neck.in_channels`` (``FPN``, ``PAFPN``, ...).
    ``style='mmseg'``: the list for ``model.neck.in_channels`` (``FPN``, ``MultiLevelNeck``) or a
    multi-input ``decode_head.in_channels`` (``UPerHead``); a single-input head (``ASPPHead``,
    ``FCNHead``) takes the entry at its ``in_index``. Both are the backbone's outputs in order;
    ``style`` is checked so a typo does not pass silently.

    ``backbone_cfg`` may be a backbone dict (``dict(type='mmcls.ResNet', depth=50, ...)``), a
    whole detector/segmentor ``model`` dict, a ``Config``, a config path or a built backbone.

    A pooled output (stride ``None``: ConvNeXt ``gap_before_final_norm=True``, ViT
    ``out_type='cls_token'``) raises a ``ValueError`` naming the backbone argument to change.
    """
    from ..models.necks.spatial import check_spatial_outputs
    from ..utils.validation import check_choice
    check_choice('style', style, STYLES)
    backbone = _backbone_module(backbone_cfg)
    check_spatial_outputs(backbone, f'an {style} neck or head')
    return _out_channels(backbone)


def _resolve(value, channels: List[int], in_index, where: str):
    if not (isinstance(value, str) and value == AUTO):
        return value
    if in_index is None:
        return list(channels)
    if isinstance(in_index, int):
        try:
            return channels[in_index]
        except IndexError:
            raise ValueError(f'{where}.in_index={in_index} is out of range for a backbone with '
                             f'{len(channels)} outputs (channels {channels})') from None
    return [channels[i] for i in in_index]


def fill_auto_in_channels(model_cfg: Union[dict, ConfigDict], style: str = 'mmdet') -> dict:
    """A copy of a detector/segmentor ``model`` config with every ``in_channels='auto'`` filled.

    Looks at ``neck`` (a dict or a list of dicts: the first gets the backbone's channels),
    and for ``style='mmseg'`` at ``decode_head`` / ``auxiliary_head`` (a dict or a list): without
    a neck they read the backbone outputs (``in_index`` picks one entry or a sub-list).
    Heads after a neck keep their explicit values (their input is the neck's output).
    """
    from ..utils.validation import check_choice
    check_choice('style', style, STYLES)
    cfg = _plain(model_cfg)
    if not isinstance(cfg, dict) or not isinstance(cfg.get('backbone'), dict):
        raise KeyError('model_cfg must be a detector/segmentor model dict with a "backbone" '
                       'dict')
    channels = neck_in_channels(cfg['backbone'], style)
    neck = cfg.get('neck')
    necks = neck if isinstance(neck, list) else [neck] if isinstance(neck, dict) else []
    if necks and necks[0].get('in_channels') == AUTO:
        necks[0]['in_channels'] = list(channels)
    for i, n in enumerate(necks[1:], 1):
        if n.get('in_channels') == AUTO:
            raise ValueError(f'neck[{i}].in_channels="auto": only the first neck reads the '
                             f'backbone; write the channels of neck[{i - 1}]\'s outputs')
    if style == 'mmseg':
        for key in ('decode_head', 'auxiliary_head'):
            heads = cfg.get(key)
            head_list = heads if isinstance(heads, list) else [heads] if heads else []
            for j, head in enumerate(head_list):
                if not isinstance(head, dict) or head.get('in_channels') != AUTO:
                    continue
                where = key if not isinstance(heads, list) else f'{key}[{j}]'
                if necks:
                    raise ValueError(f'{where}.in_channels="auto" after a neck: the head reads '
                                     f'the neck outputs, write their channels')
                head['in_channels'] = _resolve(AUTO, channels, head.get('in_index'), where)
    return cfg


def build_with_auto_in_channels(model_type, style=None, **model_cfg):
    """Build the detector/segmentor ``model_type`` from ``model_cfg`` after
    :func:`fill_auto_in_channels` (registered as ``FillAutoInChannels``).

    The model is built by mmengine's root registry in the current default scope (``mmdet`` or
    ``mmseg``: what their tools set from ``default_scope``), so ``model_type`` is written as in
    the config it replaces (``'EncoderDecoder'``, ``'RetinaNet'``; or scoped,
    ``'mmseg.EncoderDecoder'``). ``style``: ``'mmseg'`` when the config has a ``decode_head`` or
    ``auxiliary_head``, else ``'mmdet'``.
    """
    from mmengine.registry import MODELS as ROOT
    if not (isinstance(model_type, str) and model_type) and not callable(model_type):
        raise TypeError(f'FillAutoInChannels: model_type must name the model to build (e.g. '
                        f'\'EncoderDecoder\', \'RetinaNet\'), got {model_type!r}')
    if style is None:
        style = 'mmseg' if any(model_cfg.get(k) for k in ('decode_head', 'auxiliary_head')) \
            else 'mmdet'
    cfg = fill_auto_in_channels(dict(model_cfg), style)
    cfg['type'] = model_type
    return ROOT.build(cfg)


def _register() -> None:
    from ..registry import MODELS
    MODELS.register_module('FillAutoInChannels', module=build_with_auto_in_channels, force=True)


_register()
