"""The all-or-nothing rule on names: may this state dict be loaded into this model?

:func:`check_state_dict_fits` is the one function every route asks (``load_state_dict`` of
``state.py``, hence ``Pretrained``, ``load_checkpoint``, ``convert --model`` and the CLI's
``--checkpoint``; module load hooks may call it too). It refuses a load that would leave tensors
of the model at init or drop checkpoint tensors of modules the model has, names the keys and,
when the unexpected tensors could fill the missing ones, the layout that was not converted.
What it lets through is named in :attr:`StateDictFit.notes` (the load report's notes).
"""
import re
from collections import Counter, OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from .keys import (CheckpointMismatchError, _group_lines, _unwrap, check_strict, group_keys,
                   own_state_dict)

__all__ = ['check_state_dict_fits', 'StateDictFit', 'OUTSIDE_BACKBONE']


# Names at the top of a checkpoint that are never part of a backbone (the model has no such
# child): classifier heads, necks, task heads, training-only tokens. Dropped and named.
#: where the wrappers keep the library model (TIMMBackbone.timm_model, TorchvisionBackbone.model)
WRAPPED_MODEL_ATTRS = ('timm_model', 'model')
OUTSIDE_BACKBONE = ('fc', 'head', 'heads', 'classifier', 'head_dist', 'pre_logits', 'neck',
                    'necks', 'decode_head', 'auxiliary_head', 'data_preprocessor', 'rpn_head',
                    'roi_head', 'bbox_head', 'mask_head', 'optimizer', 'mask_token')
_COUNTER = 'num_batches_tracked'  # BatchNorm's step counter: not a weight, never decisive
ADDED, NOT_BUILT, OUTSIDE, NOT_IN_MODEL, INDEX_BUFFERS = (
    'added on top of the checkpoint\'s architecture, left as initialised',
    'not built by this model (stages past its out_indices or num_stages), ignored',
    'outside the backbone (classifier heads, necks, training-only tokens), ignored',
    'of modules this model does not have, ignored',
    'index buffers computed at construction (not learned), kept')
_OPT_OUT = ("pass strict=False (init_cfg=dict(type='Pretrained', ..., strict=False), "
            "load_checkpoint(..., strict=False)) or --non-strict (CLI) to load the matching "
            "tensors anyway")


def _first(keys: Sequence[str], limit: int = 5) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


def _modules_of(keys: Sequence[str], limit: int = 4) -> str:
    """The modules owning ``keys`` (``conv.conv_offset``), or their groups when there are many."""
    owners = list(OrderedDict.fromkeys(k.rsplit('.', 1)[0] if '.' in k else k for k in keys))
    if len(owners) > limit:
        owners = list(group_keys(owners))
    return _first(owners, limit)


class StateDictFit:
    """What :func:`check_state_dict_fits` decided: the refused keys, the named exceptions."""

    def __init__(self, module_name: str, source: str, strict: Optional[bool]):
        self.module_name, self.source, self.strict = module_name, source, strict
        self.missing: List[str] = []  # of the model, not in the checkpoint: left at init
        self.dropped: List[str] = []  # of the checkpoint, of modules the model has: ignored
        self.allowed: 'OrderedDict[str, List[str]]' = OrderedDict()  # reason -> keys
        self.layout: Optional[str] = None  # why the keys do not line up, when it is known

    @property
    def refused(self) -> bool:
        """Whether the load must not happen (never with ``strict=False``)."""
        return self.strict is not False and bool(self.missing or self.dropped)

    @property
    def summary(self) -> str:
        """One line: counts and the first keys of each refused group."""
        parts = []
        if self.missing:
            parts.append(f'{len(self.missing)} missing (tensors of the model not in the '
                         f'checkpoint, would stay at init: {_first(self.missing, 3)})')
        if self.dropped:
            whose = 'checkpoint tensors' if self.strict else \
                'checkpoint tensors of modules the model has'
            parts.append(f'{len(self.dropped)} unexpected ({whose}, would be dropped: '
                         f'{_first(self.dropped, 3)})')
        text = '; '.join(parts) or 'every tensor fits'
        return text + (f'. {self.layout}' if self.layout else '')

    @property
    def notes(self) -> List[str]:
        """Report lines naming every exception that was allowed (and the opt-out's damage)."""
        notes = [f'{len(keys)} tensor{"s" if len(keys) > 1 else ""} {reason}: '
                 f'{_modules_of(keys)}' for reason, keys in self.allowed.items()]
        if self.strict is False and (self.missing or self.dropped):
            notes.append(f'strict=False: loaded although {self.summary}')
        return notes

    def error_message(self) -> str:
        head = 'strict=True' if self.strict else 'no half-loads'
        lines = [f'{self.source} does not fit {self.module_name} ({head}: nothing was loaded): '
                 f'{self.summary}']
        for title, keys in (('missing in the checkpoint', self.missing),
                            ('unexpected in the checkpoint', self.dropped)):
            if keys:
                lines.append(f'  {title}: {len(keys)} key{"s" if len(keys) > 1 else ""}')
                lines += _group_lines(keys, max_groups=8)
        lines.append(f'  {_OPT_OUT}.')
        return '\n'.join(lines)


def _addition_prefixes(model: nn.Module, keys: Sequence[str]) -> Dict[str, str]:
    """``{'name.': why}`` for modules added on top of a checkpoint's architecture: mmcv DCN
    offsets, mmdet block plugins, output norms ``norm{i}`` of ``out_indices`` before the last
    norm the checkpoint (``keys``) has, and what a module declares in a ``checkpoint_additions``
    attribute (names of its children or of its own tensors, or a ``{child: why}`` dict)."""
    out: Dict[str, str] = {}
    for name, module in model.named_modules():
        dot = f'{name}.' if name else ''
        if 'deform' in type(module).__name__.lower():
            for child in ('conv_offset', 'conv_offset_mask'):
                if isinstance(getattr(module, child, None), nn.Module):
                    out[f'{dot}{child}.'] = 'mmcv DCN offsets'
        plugins = [n for names in getattr(module, '_plugins_after', ()) or () for n in names]
        for attr in ('after_conv1_plugin_names', 'after_conv2_plugin_names',
                     'after_conv3_plugin_names'):  # mmdet's own ResNet blocks
            plugins += list(getattr(module, attr, ()) or ())
        for child in plugins:
            out[f'{dot}{child}.'] = 'mmdet block plugins'
        declared = getattr(module, 'checkpoint_additions', None)
        if isinstance(declared, Mapping):
            out.update((f'{dot}{child}.', str(why)) for child, why in declared.items())
        elif isinstance(declared, (list, tuple, set, frozenset)):
            out.update((f'{dot}{child}.', 'declared by the model') for child in declared)
    # a classification checkpoint has the output norm of the last stage only (norm3 of a Swin
    # or ConvNeXt, norm6 of a PoolFormer): the norms of earlier out_indices are added on top
    out_indices = getattr(model, 'out_indices', None)
    last = max((int(m.group(1)) for m in (re.match(r'^norm(\d+)\.', k) for k in keys) if m),
               default=-1)
    if isinstance(out_indices, (list, tuple)):
        for i in out_indices:
            if isinstance(i, int) and 0 <= i < last and \
                    isinstance(getattr(model, f'norm{i}', None), nn.Module):
                out[f'norm{i}.'] = 'output norms of intermediate out_indices'
    return out


def _truncated_stages(model: nn.Module) -> Optional[nn.Module]:
    """The container of the model's stages when it built fewer than its architecture has
    (stages past ``out_indices`` are not built), else None."""
    stages = model.stem_and_stages()[1:] if callable(getattr(model, 'stem_and_stages', None)) \
        else []
    num_stages = getattr(model, 'num_stages', None)
    if not stages or not isinstance(num_stages, int) or len(stages) >= num_stages:
        return None
    for module in model.children():
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) == len(stages) \
                and all(a is b for a, b in zip(module, stages)):
            return module
    return None


def _classify_unexpected(key: str, modules: Mapping[str, nn.Module], children,
                         stage_list: Optional[nn.Module], num_stages) -> Optional[str]:
    """The exception an unexpected key falls under, or None when dropping it is a half-load."""
    parts = key.split('.')
    if parts[0] in OUTSIDE_BACKBONE and parts[0] not in children:
        return OUTSIDE
    if len(parts) > 2 and parts[0] in WRAPPED_MODEL_ATTRS and parts[1] in OUTSIDE_BACKBONE:
        # the head of a wrapped library model (TIMMBackbone's timm_model.fc); an inner module
        # named like a head elsewhere (CSPNeXt's attention.fc) is a backbone module
        return OUTSIDE
    for depth in range(len(parts) - 1, 0, -1):
        name = '.'.join(parts[:depth])
        if name in modules:
            owner, child = modules[name], parts[depth]
            if owner is stage_list and child.isdigit() and \
                    len(owner) <= int(child) < num_stages and depth < len(parts) - 1:
                return NOT_BUILT  # stages past out_indices
            if child in (getattr(owner, 'checkpoint_not_built', None) or ()):
                return NOT_BUILT  # a child the module declares it did not build (the
                # downsampling after the last built stage, which feeds an unbuilt one)
            return None  # a module the model has would lose these tensors
    if len(parts) == 1:
        return None  # a parameter of the model itself (a token, a scale)
    head = re.match(r'^(\D+)(\d+)$', parts[0])
    if head and any(re.fullmatch(re.escape(head.group(1)) + r'\d+', c) for c in children):
        return NOT_BUILT  # layer4 when the model built layer1..3, norm3 next to norm0
    return NOT_IN_MODEL


def _could_fill(missing: Sequence[str], unexpected: Sequence[str], own, state_dict) -> int:
    """How many of ``missing`` an unexpected tensor of the same leaf name (``weight``,
    ``running_var``, ...) and shape could fill; 0 unless that is at least two (one coincidence
    is no layout)."""
    pool = Counter((k.rsplit('.', 1)[-1], tuple(getattr(state_dict[k], 'shape', ())))
                   for k in unexpected)
    filled = 0
    for key in missing:
        slot = (key.rsplit('.', 1)[-1], tuple(own[key].shape))
        if pool[slot] > 0:
            pool[slot] -= 1
            filled += 1
    return filled if filled >= 2 else 0


def check_state_dict_fits(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                          strict: Optional[bool] = None, source: str = 'checkpoint',
                          converter: Optional[str] = None, prefix: str = '',
                          raise_error: bool = True) -> StateDictFit:
    """The one rule deciding whether ``state_dict`` may be loaded into ``model`` (names only;
    shapes and dtypes are checked by :func:`load_state_dict` as the tensors are copied).

    With ``strict=None`` (every default route) the load is refused when it would leave a tensor
    of the model at its initial value or drop a checkpoint tensor of a module the model has;
    when the unexpected tensors could fill the missing ones the error says which layout was not
    converted. Named exceptions (listed in :attr:`StateDictFit.notes`, hence in the load report):
    modules added on top of the checkpoint's architecture (mmcv DCN ``conv_offset``, mmdet
    plugins, output norms of intermediate ``out_indices``, a module's ``checkpoint_additions``),
    integer index buffers built at construction, keys outside the backbone (``fc``, ``head``,
    ``neck``, ``decode_head``, ...), modules the model does not have or did not build (stages
    past ``out_indices``) and BatchNorm's ``num_batches_tracked``. ``strict=True`` allows no
    exception at all; ``strict=False`` (the explicit opt-out) refuses nothing and names the
    damage in the notes.

    Args:
        model: the module (a model wrapper is unwrapped).
        state_dict: ``{name: tensor}`` in the model's names (after conversion); only the keys
            under ``prefix`` are considered (a ``load_state_dict`` pre-hook passes its prefix).
        converter: the converter that produced the names (for the error message).
        raise_error: raise :class:`CheckpointMismatchError` when refused (else only report).
    Returns:
        a :class:`StateDictFit`; ``.refused`` tells whether the load must not happen.
    """
    strict = check_strict(strict)
    model = _unwrap(model)
    if prefix:
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    own = own_state_dict(model, keep_vars=True)
    fit = StateDictFit(type(model).__name__, source, strict)
    missing = [k for k in own if k not in state_dict and not k.endswith(_COUNTER)]
    unexpected = [k for k in state_dict if k not in own and not k.endswith(_COUNTER)]
    if strict:
        fit.missing, fit.dropped = missing, unexpected
    else:
        additions = _addition_prefixes(model, list(state_dict))
        params = {name for name, _ in model.named_parameters()}
        for key in missing:
            why = next((why for p, why in additions.items()
                        if key.startswith(p) or key == p[:-1]), None)  # a child or a tensor
            if why is not None:
                why = f'{ADDED} ({why})'
            elif key not in params and not own[key].is_floating_point():
                why = INDEX_BUFFERS
            if why is None:
                fit.missing.append(key)
            else:
                fit.allowed.setdefault(why, []).append(key)
        modules = dict(model.named_modules())
        children = set(model._modules)
        stage_list = _truncated_stages(model)
        for key in unexpected:
            why = _classify_unexpected(key, modules, children, stage_list,
                                       getattr(model, 'num_stages', None))
            if why is None:
                fit.dropped.append(key)
            else:
                fit.allowed.setdefault(why, []).append(key)
    if fit.missing or fit.dropped:
        fit.layout = _layout_sentence(fit, own, state_dict, unexpected, converter)
    if fit.refused and raise_error:
        error = CheckpointMismatchError(fit.error_message())
        error.fit = fit
        raise error
    return fit


def _layout_sentence(fit: StateDictFit, own, state_dict, unexpected, converter) -> Optional[str]:
    """Why the names do not line up, when the keys tell: an unconverted layout (the unexpected
    tensors could fill the missing ones), a prefix to take, a feature the model lacks."""
    from .converters.layouts import describe_layout, describe_features
    for head in sorted({k.split('.')[0] for k in unexpected}):
        hits = sum(1 for k in fit.missing if f'{head}.{k}' in state_dict)
        if fit.missing and hits * 2 >= len(fit.missing):
            return f'The checkpoint holds the weights under {head!r}: pass prefix={head!r}.'
    filled = _could_fill(fit.missing, unexpected, own, state_dict) if fit.missing else 0
    layout, converter_name = describe_layout(unexpected)  # the keys that did not fit
    if filled and (layout is not None or 2 * filled >= len(fit.missing)):
        lead = (f'The unexpected tensors have the shapes of {filled} of the '
                f'{len(fit.missing)} missing ones: a layout that was not converted')
        if converter:
            return (f'{lead} (converted with {converter}, yet its names do not match '
                    f'{fit.module_name}: a variant {converter} does not cover).')
        if layout is not None:
            why_not = _converter_refusal(converter_name, state_dict)
            if converter_name is None or why_not == _NO_CONVERTER:
                return f'{lead}: no converter from {layout} to {fit.module_name}.'
            if why_not:
                return f'{lead} ({layout}; {why_not}).'
            return (f'{lead} ({layout}: convert it with {converter_name}, convert=\'auto\' or '
                    f'the source name).')
        return (f'{lead}: no converter knows this layout (its keys start with '
                f'{_first(list(state_dict), 3)}).')
    features = describe_features(fit.dropped)
    if features:
        return f'The checkpoint has {features}, which this {fit.module_name} does not.'
    return None


_NO_CONVERTER = 'there is no converter for it'


def _converter_refusal(name: Optional[str], state_dict) -> Optional[str]:
    """Why the converter ``name`` does not convert ``state_dict`` (its error),
    :data:`_NO_CONVERTER` when it is not in the table, or None when it converts."""
    from .converters import available_converters
    conv = next((c for c in available_converters() if c.name == name), None)
    if conv is None:
        return _NO_CONVERTER
    try:
        conv.convert(state_dict)
    except Exception as error:  # noqa: BLE001 - its message is the explanation
        text = error.args[0] if isinstance(error, KeyError) and error.args else error
        return f'{name} does not convert it: {text}'
    return None
