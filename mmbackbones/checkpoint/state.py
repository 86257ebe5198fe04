"""From a loaded checkpoint to weights in a module, with an honest report.

``extract_state_dict`` finds the tensors in what a file held, ``select_prefix`` keeps one
sub-module's weights (an error names the prefixes that exist when the asked one matches nothing),
``load_state_dict`` copies them into a module after checking every shape (a mismatch is an error
naming the key and both shapes, raised before any tensor is copied: never a half-load) and returns
a :class:`LoadReport` whose ``message`` groups missing and unexpected keys by prefix with counts.
Names are checked by the one rule of ``fit.py`` (:func:`check_state_dict_fits`, also importable
from here): no half-load unless ``strict=False``.
"""
import contextvars
import logging
import warnings
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from mmengine.logging import print_log
from torch import nn

from .fit import StateDictFit, check_state_dict_fits  # noqa: F401 (the rule; importable here)
from .keys import (CheckpointMismatchError, _group_lines, _unwrap, check_strict,  # noqa: F401
                   group_keys, own_state_dict)

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
                fits: Optional[list] = None):
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


def _record_keys(seen: set):
    """A root pre-hook that records the keys torch is about to load (after the module's own
    hooks converted them): BatchNorm fills a missing ``num_batches_tracked`` by itself, and only
    the ones really in the checkpoint count as loaded."""

    def hook(module, state_dict, prefix, *args, **kwargs):
        seen.update(k[len(prefix):] if prefix and k.startswith(prefix) else k for k in state_dict)

    return hook


def _non_finite(own: Mapping[str, torch.Tensor], keys: Sequence[str]) -> List[str]:
    """The loaded tensors holding NaN or Inf (floating point and complex only)."""
    out = []
    for key in keys:
        value = own.get(key)
        if isinstance(value, torch.Tensor) and not value.is_meta and (
                value.is_floating_point() or value.is_complex()) and value.numel():
            with torch.no_grad():
                # a sum is finite when every value is (one pass, no mask: ~5x faster than
                # isfinite().all()); a sum that overflowed is checked value by value
                if not bool(torch.isfinite(value.sum())) and \
                        not bool(torch.isfinite(value).all()):
                    out.append(key)
    return out


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
    own = own_state_dict(module, keep_vars=True)
    sd = OrderedDict(state_dict)
    missing = [k for k in own if k not in sd and not k.endswith(_IGNORED_MISSING)]
    unexpected = [k for k in sd if k not in own]
    report = LoadReport(type(module).__name__, source,
                        [k for k in own if k in sd], missing, unexpected, notes)
    dtype_warnings: List[str] = []
    fits: list = []
    handle = module.register_load_state_dict_pre_hook(
        _check_hook(own, source, dtype_warnings, strict, converter, fits))
    seen: set = set()
    recorder = module.register_load_state_dict_pre_hook(_record_keys(seen))
    token = _FIT_CHECKED.set(True)
    try:
        result = module.load_state_dict(sd, strict=False)
    finally:
        _FIT_CHECKED.reset(token)
        handle.remove()
        recorder.remove()
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
    # only tensors that were in the checkpoint (not the BatchNorm counters torch fills in)
    report.loaded = [k for k in own if k not in not_loaded and
                     (k in seen or not k.endswith(_IGNORED_MISSING))]
    # read back from the module: its own load hooks may have replaced a parameter
    non_finite = _non_finite(own_state_dict(module, keep_vars=True), report.loaded)
    if non_finite:
        message = (f'{source}: {len(non_finite)} tensor{"s" if len(non_finite) > 1 else ""} '
                   f'hold{"" if len(non_finite) > 1 else "s"} NaN or Inf values, loaded as '
                   f'they are: ' + ', '.join(non_finite[:5])
                   + (f', ... ({len(non_finite) - 5} more)' if len(non_finite) > 5 else ''))
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        report.notes.append(message)
    print_log(report.message, logger=logger,
              level=logging.INFO if report.ok else logging.WARNING)
    return report
