"""From a loaded checkpoint to weights in a module, with an honest report.

``extract_state_dict`` finds the tensors in what a file held, ``select_prefix`` keeps one
sub-module's weights (an error names the prefixes that exist when the asked one matches nothing),
``load_state_dict`` copies them into a module after checking every shape (a mismatch is an error
naming the key and both shapes, raised before any tensor is copied: never a half-load) and returns
a :class:`LoadReport` whose ``message`` groups missing and unexpected keys by prefix with counts.
"""
import contextvars
import logging
import re
import warnings
from collections import Counter, OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from mmengine.logging import print_log
from torch import nn

__all__ = ['extract_state_dict', 'select_prefix', 'load_state_dict', 'LoadReport',
           'CheckpointMismatchError', 'group_keys', 'top_level_prefixes',
           'check_state_dict_fits', 'StateDictFit', 'check_strict', 'fit_already_checked']

# where training frameworks keep the weights inside a checkpoint dict, most specific first
STATE_DICT_KEYS = ('state_dict', 'model', 'module', 'model_state', 'model_state_dict', 'net',
                   'blobs')  # blobs: caffe2 (MSRA / Detectron1) .pkl files
_IGNORED_MISSING = ('num_batches_tracked',)
# set while load_state_dict loads: the fit rule already ran on this load (pre-hooks of the
# modules themselves need not run it again)
_FIT_CHECKED: contextvars.ContextVar = contextvars.ContextVar('mmbackbones_fit_checked',
                                                              default=False)


def fit_already_checked() -> bool:
    """True inside :func:`load_state_dict`, whose root hook runs :func:`check_state_dict_fits`
    with the caller's ``strict`` (a module's own pre-hook should then not run it again)."""
    return _FIT_CHECKED.get()


class CheckpointMismatchError(RuntimeError):
    """Checkpoint and module disagree (shapes always; names when ``strict=True``)."""


def _to_tensor(key: str, value):
    if isinstance(value, torch.Tensor):
        return value
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None and isinstance(value, np.ndarray):
        return torch.from_numpy(value)  # no copy (detectron2 .pkl files hold numpy arrays)
    raise TypeError(f'checkpoint entry {key!r} is a {type(value).__name__}, not a tensor: only '
                    f'tensors are loaded into a module')


def extract_state_dict(checkpoint, source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """The ``{name: tensor}`` part of a loaded checkpoint.

    Accepts a bare state dict or a dict holding one under ``state_dict``/``model``/``module``/...
    (mmengine, timm train scripts, detectron2, DeiT). numpy arrays become tensors without a copy;
    ``module.`` (DataParallel) is stripped when every key has it.
    """
    if not isinstance(checkpoint, Mapping):
        what = repr(checkpoint) if hasattr(checkpoint, 'global_name') else \
            type(checkpoint).__name__
        raise TypeError(f'{source} holds a {what}, not a dict of tensors (a file with a whole '
                        f'pickled model: save model.state_dict() instead)')
    sd = checkpoint
    for key in STATE_DICT_KEYS:
        value = checkpoint.get(key) if isinstance(checkpoint.get(key, None), Mapping) else None
        if value is not None and value:
            sd = value
            break
    out = OrderedDict()
    bad = []
    for key, value in sd.items():
        if not isinstance(key, str):
            bad.append(repr(key))
            continue
        if key.startswith('_mmbackbones_') or key in ('meta', 'message_hub', 'optimizer',
                                                      'param_schedulers', '__author__',
                                                      'matching_heuristics'):
            continue
        try:
            out[key] = _to_tensor(key, value)
        except TypeError as e:
            raise TypeError(f'{source}: {e}') from None
    if bad:
        raise TypeError(f'{source}: state dict keys must be strings, got {", ".join(bad[:5])}')
    if not out:
        found = ', '.join(sorted(str(k) for k in checkpoint)[:10])
        raise ValueError(f'{source} holds no tensors (top-level keys: {found})')
    if all(k.startswith('module.') for k in out):
        out = OrderedDict((k[len('module.'):], v) for k, v in out.items())
    return out


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


def top_level_prefixes(keys: Sequence[str]) -> 'OrderedDict[str, int]':
    """``{first name: number of keys}``: what a checkpoint holds, for error messages."""
    counts: 'OrderedDict[str, int]' = OrderedDict()
    for key in keys:
        head = key.split('.')[0]
        counts[head] = counts.get(head, 0) + 1
    return counts


def _describe_prefixes(keys: Sequence[str], limit: int = 12) -> str:
    counts = top_level_prefixes(keys)
    items = [f'{name} ({n} key{"s" if n > 1 else ""})' for name, n in counts.items()]
    more = f', ... ({len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def select_prefix(state_dict: Mapping[str, torch.Tensor], prefix: Optional[str],
                  source: str = 'checkpoint', hint: str = '') -> Dict[str, torch.Tensor]:
    """Keep the keys under ``prefix`` (``'backbone'`` or ``'backbone.'``), prefix removed.

    Raises ``KeyError`` naming the prefixes the checkpoint does have when none matches.
    """
    if not prefix:
        return dict(state_dict)
    if not isinstance(prefix, str):
        raise TypeError(f'prefix must be a string such as "backbone", got {prefix!r}')
    dotted = prefix if prefix.endswith('.') else prefix + '.'
    out = OrderedDict((k[len(dotted):], v) for k, v in state_dict.items() if k.startswith(dotted))
    if not out:
        message = (f'prefix {prefix!r} matches no key in {source}; the prefixes it has are: '
                   f'{_describe_prefixes(list(state_dict))}')
        if hint:
            message += f'. {hint}'
        raise KeyError(message)
    return out


class LoadReport:
    """What happened when a state dict was loaded into a module."""

    def __init__(self, module_name: str, source: str, loaded: List[str], missing: List[str],
                 unexpected: List[str], notes: Sequence[str] = ()):
        self.module_name, self.source = module_name, source
        self.loaded, self.missing, self.unexpected = loaded, missing, unexpected
        self.notes = list(notes)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected

    @property
    def message(self) -> str:
        total = len(self.loaded) + len(self.missing)
        lines = [f'Loaded {self.source} into {self.module_name}: {len(self.loaded)}/{total} '
                 f'tensors of the module matched'
                 + ('.' if self.ok else f', {len(self.missing)} missing, '
                    f'{len(self.unexpected)} unexpected.')]
        lines += [f'  note: {note}' for note in self.notes]
        for title, keys in (('missing in the checkpoint (left as initialised)', self.missing),
                            ('unexpected in the checkpoint (ignored)', self.unexpected)):
            if keys:
                lines.append(f'  {title}: {len(keys)} key{"s" if len(keys) > 1 else ""}')
                lines += _group_lines(keys)
        return '\n'.join(lines)

    def __repr__(self):
        return self.message


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


def _uncopyable(value: torch.Tensor, own: torch.Tensor) -> Optional[str]:
    """Why ``own.copy_(value)`` would fail, or None. Checked for every tensor before any copy."""
    if value.layout != torch.strided:
        return f'a {value.layout} tensor (only dense tensors are loaded)'
    if value.is_meta:
        return 'a meta tensor (it has no data)'
    if value.is_quantized:
        return f'a quantized tensor ({value.dtype})'
    try:  # a dry run on the meta device: dtype and shape rules of copy_, without the data
        own.new_empty(own.shape, device='meta').copy_(value.to('meta'))
    except Exception as e:  # noqa: BLE001 - any reason copy_ refuses
        return f'not copyable into {own.dtype}: {" ".join(str(e).split())[:120]}'
    return None


def _lossy_dtype(value: torch.Tensor, own: torch.Tensor) -> bool:
    """Integer, bool or complex values going into a real floating-point parameter."""
    return own.is_floating_point() and not value.is_floating_point()


def _check_hook(own: Mapping[str, torch.Tensor], source: str, warnings: List[str],
                strict: Optional[bool] = None, converter: Optional[str] = None,
                fits: Optional[List['StateDictFit']] = None):
    """A root-level load_state_dict pre-hook run after the module's own pre-hooks (e.g. a ViT's
    position-embedding resize) and before any tensor is copied: every shape must match and every
    tensor must be copyable, and :func:`check_state_dict_fits` must accept the names, else
    nothing is loaded."""

    def hook(module, state_dict, prefix, *args, **kwargs):
        # names first: an unconverted layout is explained by its layout, not by the shapes of
        # the few keys that happen to share a name
        fit = check_state_dict_fits(module, state_dict, strict, source, converter, prefix)
        if fits is not None:
            fits.append(fit)
        bad = []
        for key, value in state_dict.items():
            name = key[len(prefix):] if prefix and key.startswith(prefix) else key
            target = own.get(name)
            if target is None:
                continue
            if not isinstance(value, torch.Tensor):
                bad.append(f'{name}: a {type(value).__name__}, not a tensor')
            elif tuple(value.shape) != tuple(target.shape):
                bad.append(f'{name}: checkpoint {tuple(value.shape)} vs model '
                           f'{tuple(target.shape)}')
            else:
                why = _uncopyable(value, target)
                if why:
                    bad.append(f'{name}: {why}')
                elif _lossy_dtype(value, target):
                    warnings.append(f'{name}: {value.dtype} values loaded into a {target.dtype} '
                                    f'parameter')
        if bad:
            raise CheckpointMismatchError(
                f'{source} does not fit {type(module).__name__}: {len(bad)} tensor'
                f'{"s" if len(bad) > 1 else ""} cannot be loaded (nothing was loaded):\n  '
                + '\n  '.join(bad[:20]) + ('\n  ...' if len(bad) > 20 else ''))

    return hook


def load_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                    strict: Optional[bool] = None, source: str = 'checkpoint',
                    notes: Sequence[str] = (), logger='current',
                    converter: Optional[str] = None) -> LoadReport:
    """Copy ``state_dict`` into ``module`` and log one summary block.

    Shapes are checked first (after the module's own load hooks ran): any mismatch raises
    :class:`CheckpointMismatchError` naming the keys and both shapes and nothing is copied; so does
    a tensor of the right shape that cannot be copied (sparse, meta, quantized, ...). Then the
    names go through :func:`check_state_dict_fits` (``strict=None``: no half-load, named
    exceptions; ``True``: every key matches; ``False``: the opt-out), also before copying; the
    exceptions it allowed are notes of the report. Integer/bool/complex values going into
    floating-point parameters are loaded with a warning.
    """
    strict = check_strict(strict)
    module = _unwrap(module)
    own = module.state_dict(keep_vars=True)
    sd = OrderedDict(state_dict)
    missing = [k for k in own if k not in sd and not k.endswith(_IGNORED_MISSING)]
    unexpected = [k for k in sd if k not in own]
    report = LoadReport(type(module).__name__, source,
                        [k for k in own if k in sd], missing, unexpected, notes)
    dtype_warnings: List[str] = []
    fits: List[StateDictFit] = []
    handle = module.register_load_state_dict_pre_hook(
        _check_hook(own, source, dtype_warnings, strict, converter, fits))
    token = _FIT_CHECKED.set(True)
    try:
        result = module.load_state_dict(sd, strict=False)
    finally:
        _FIT_CHECKED.reset(token)
        handle.remove()
    if fits:
        report.notes.extend(fits[-1].notes)
    if dtype_warnings:
        message = (f'{source}: {len(dtype_warnings)} non-floating-point tensor(s) loaded into '
                   f'floating-point parameters (values converted): '
                   + '; '.join(dtype_warnings[:5]) + ('; ...' if len(dtype_warnings) > 5 else ''))
        warnings.warn(message, stacklevel=2)
        report.notes.append(message)
    # keys a module's own load hooks consumed or added are reported as torch saw them
    report.missing = [k for k in result.missing_keys if not k.endswith(_IGNORED_MISSING)]
    report.unexpected = list(result.unexpected_keys)
    not_loaded = set(result.missing_keys)
    report.loaded = [k for k in own if k not in not_loaded]
    print_log(report.message, logger=logger,
              level=logging.INFO if report.ok else logging.WARNING)
    return report


# ----- the all-or-nothing rule: does a state dict fit a model? -------------------------------
# Names at the top of a checkpoint that are never part of a backbone (the model has no such
# child): classifier heads, necks, task heads, training-only tokens. Dropped and named.
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


def check_strict(strict) -> Optional[bool]:
    """``None`` (the fit rule), ``True`` (every key matches) or ``False`` (the opt-out)."""
    if strict is not None and not isinstance(strict, bool):
        raise TypeError(f'strict must be None (default: refuse a load that leaves tensors of the '
                        f'model at init or drops tensors of its modules), True (every key must '
                        f'match) or False (load what matches), got {strict!r}')
    return strict


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
    offsets, mmdet block plugins, output norms ``norm{i}`` of ``out_indices`` before the last norm
    the checkpoint (``keys``) has, and
    what a module declares in a ``checkpoint_additions`` attribute (names of its children, or a
    ``{child: why}`` dict)."""
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
    if any(p in OUTSIDE_BACKBONE for p in parts[1:-1]):
        return OUTSIDE  # the head of a wrapped library model (TIMMBackbone's timm_model.fc)
    for depth in range(len(parts) - 1, 0, -1):
        name = '.'.join(parts[:depth])
        if name in modules:
            owner, child = modules[name], parts[depth]
            if owner is stage_list and child.isdigit() and \
                    len(owner) <= int(child) < num_stages and depth < len(parts) - 1:
                return NOT_BUILT  # stages past out_indices
            return None  # a module the model has would lose these tensors
    if len(parts) == 1:
        return None  # a parameter of the model itself (a token, a scale)
    head = re.match(r'^(\D+)(\d+)$', parts[0])
    if head and any(re.fullmatch(re.escape(head.group(1)) + r'\d+', c) for c in children):
        return NOT_BUILT  # layer4 when the model built layer1..3, norm3 next to norm0
    return NOT_IN_MODEL


def _could_fill(missing: Sequence[str], unexpected: Sequence[str], own, state_dict) -> int:
    """How many of ``missing`` an unexpected tensor of the same shape could fill."""
    pool = Counter(tuple(getattr(state_dict[k], 'shape', ())) for k in unexpected)
    filled = 0
    for key in missing:
        shape = tuple(own[key].shape)
        if pool[shape] > 0:
            pool[shape] -= 1
            filled += 1
    return filled


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
    own = model.state_dict(keep_vars=True)
    fit = StateDictFit(type(model).__name__, source, strict)
    missing = [k for k in own if k not in state_dict and not k.endswith(_COUNTER)]
    unexpected = [k for k in state_dict if k not in own and not k.endswith(_COUNTER)]
    if strict:
        fit.missing, fit.dropped = missing, unexpected
    else:
        additions = _addition_prefixes(model, list(state_dict))
        params = {name for name, _ in model.named_parameters()}
        for key in missing:
            why = next((why for p, why in additions.items() if key.startswith(p)), None)
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
    if filled:
        layout, converter_name = describe_layout(state_dict)
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
