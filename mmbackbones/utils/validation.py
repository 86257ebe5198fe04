"""Argument validation shared by every backbone.

Each helper raises ``ValueError``/``TypeError`` whose message names the argument, the bad value
and what is allowed, so a wrong config fails at construction with a readable message.
"""
import functools
import numbers
from collections.abc import Mapping, Sequence as SequenceABC
from typing import Iterable, Sequence, Tuple, Union

from .config_types import check_config_types
from .text import shown


def _is_int(value) -> bool:
    """An integer that is not a bool: Python ints and numpy integers alike."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _from_numpy(value):
    """numpy scalars and arrays as Python scalars and lists (numpy itself is never imported)."""
    if type(value).__module__ == 'numpy' and hasattr(value, 'tolist'):
        return value.tolist()
    return value


def to_plain(value):
    """Config containers as plain Python: any ``Mapping`` (omegaconf ``DictConfig``, ...) becomes a
    ``dict``, any non-string ``Sequence`` (omegaconf ``ListConfig``, ``range``, ...) a ``list``,
    numpy integers/floats/arrays Python numbers/lists; recursively. ``dict``s (mmengine's
    ``ConfigDict`` included), lists and tuples keep their type. Anything else (tensors, modules,
    classes, strings) is returned unchanged.
    """
    value = _from_numpy(value)
    if isinstance(value, dict):
        items = {k: to_plain(v) for k, v in value.items()}
        if all(items[k] is value[k] for k in items):
            return value
        return type(value)(items) if type(value) is not dict else items
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [to_plain(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, SequenceABC) and not isinstance(value, (str, bytes, bytearray)):
        return [to_plain(v) for v in value]
    return value


def accepts_config_containers(func):
    """Decorator for constructors: every argument goes through :func:`to_plain` first, so code
    after it only sees ``dict``/``list``/``tuple``/``int``, and its nested ``type`` values are
    checked (:func:`~.config_types.check_config_types`: never an import path). Used by
    ``BaseBackbone`` (for every family) and the necks; detectron2's ``instantiate`` passes
    ``ListConfig``/``DictConfig``."""
    if getattr(func, '_accepts_config_containers', False):
        return func

    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        args = [to_plain(a) for a in args]
        kwargs = {k: to_plain(v) for k, v in kwargs.items()}
        for i, value in enumerate(args):  # nested types (norm_cfg, act_cfg, init_cfg, ...)
            check_config_types(value, f'argument {i + 1}')
        for key, value in kwargs.items():
            check_config_types(value, key)
        return func(self, *args, **kwargs)

    wrapper._accepts_config_containers = True
    return wrapper


def checks_keywords(func):
    """Decorator for constructors without ``**kwargs``: an unknown keyword raises a
    ``TypeError`` naming the class, the argument, the closest accepted ones (``depht`` ->
    ``depth``) and the full list, instead of Python's bare "unexpected keyword argument"."""
    import difflib
    import inspect

    params = inspect.signature(func).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()) or getattr(
            func, '_checks_keywords', False):
        return func
    accepted = [n for n, p in params.items()
                if n != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.6)
            hint = (' Did you mean ' + ' or '.join(repr(c) for c in close) + '?') if close else ''
            raise TypeError(f'{type(self).__name__} got an unknown argument {shown(key)}.{hint} '
                            f'(accepted: {", ".join(accepted)})')
        return func(self, *args, **kwargs)

    wrapper._checks_keywords = True
    return wrapper


def check_positive_int(name: str, value) -> int:
    value = _from_numpy(value)
    if not _is_int(value):
        raise TypeError(f'{name} must be an int, got {shown(value)} ({type(value).__name__})')
    if value <= 0:
        raise ValueError(f'{name} must be a positive int, got {shown(value)}')
    return int(value)


def check_non_negative_int(name: str, value) -> int:
    value = _from_numpy(value)
    if not _is_int(value):
        raise TypeError(f'{name} must be an int, got {shown(value)} ({type(value).__name__})')
    if value < 0:
        raise ValueError(f'{name} must be >= 0, got {shown(value)}')
    return int(value)


class InvalidChoiceError(KeyError, ValueError):
    """A value missing from a table of choices (an unknown ``depth``, ``arch`` name, ...).

    Both a ``KeyError`` (what mmpretrain raises for an unknown ResNet depth, so code written for
    it keeps catching it) and a ``ValueError`` (what the rest of the zoo raises for a bad value).
    ``str()`` is the message as written (``KeyError`` alone would print it quoted).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def check_choice(name: str, value, choices: Iterable):
    """``value`` if it is one of ``choices``, else :class:`InvalidChoiceError` naming ``name``."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # unhashable value
        ok = False
    if not ok:
        allowed = ', '.join(repr(c) for c in choices)
        raise InvalidChoiceError(f'{name} must be one of {allowed}; got {shown(value)}')
    return value


# ----- size limits -----------------------------------------------------------------------------
# Limits on sizes that allocate memory at construction, so an absurd value (a typo, 10**6 for
# 10**2) is refused with a message instead of a multi-GB allocation or a hang. Each is far above
# any published model:
#: image side (``img_size``, CLI ``--input-size``): pretrained backbones use 224-1536 px; at 8192
#: a ViT-B/16 position table is 0.8 GB and one float32 RGB image 0.8 GB.
MAX_IMAGE_SIDE = 8192
#: blocks in one stage (ConvNeXt/Swin ``depths`` entries, ViT ``num_layers``, RegNet ``depth``):
#: the deepest published models have 36 (ResNet-152), 40 (ViT-g) and 111 (ResNet-1001) blocks
#: per stage.
MAX_BLOCKS = 1000
#: channels of one layer (``embed_dims``, ``channels``, ``feedforward_channels``, ``w0``): the
#: widest published backbones use 6144-24576 (ViT-22B's MLP); one 65536x65536 float32 matrix is
#: already 16 GiB.
MAX_WIDTH = 65536


def check_size_limit(name: str, value, limit: int, what: str = '') -> int:
    """A positive int no larger than ``limit``; else ``ValueError`` naming ``name``, the value and
    the limit (checked before anything is allocated)."""
    value = check_positive_int(name, value)
    if value > limit:
        reason = f' ({what})' if what else ''
        raise ValueError(f'{name} must be <= {limit}{reason}, got {shown(value)} (refused before '
                         f'allocating; the limits are in mmbackbones.utils.validation)')
    return value


def normalize_out_indices(out_indices: Union[int, Sequence[int]], num_stages: int,
                          name: str = 'out_indices') -> Tuple[int, ...]:
    """Turn an int or a sequence of ints into a tuple of non-negative stage indices.

    Negative indices count from the end (``-1`` is the last of ``num_stages`` stages). Order is
    kept (outputs come back in this order); duplicates and out-of-range values are refused.
    """
    out_indices = to_plain(out_indices)
    if _is_int(out_indices):
        indices = [int(out_indices)]
    elif isinstance(out_indices, (list, tuple)):
        indices = list(out_indices)
    else:
        raise TypeError(f'{name} must be an int or a list/tuple of ints, got {shown(out_indices)} '
                        f'({type(out_indices).__name__})')
    if not indices:
        raise ValueError(f'{name} must not be empty; allowed indices are '
                         f'{-num_stages}..{num_stages - 1}')
    resolved = []
    for index in indices:
        if not _is_int(index):
            raise TypeError(f'{name} must contain ints, got {shown(index)} '
                            f'({type(index).__name__}) in {shown(out_indices)}')
        if not -num_stages <= index < num_stages:
            raise ValueError(f'{name} contains {index}, out of range: allowed indices are '
                             f'{-num_stages}..{num_stages - 1} for {num_stages} stages '
                             f'(got {shown(out_indices)})')
        resolved.append(int(index) % num_stages)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f'{name} must not repeat a stage, got {shown(out_indices)} '
                         f'(resolved to {tuple(resolved)})')
    return tuple(resolved)


def check_frozen_stages(frozen_stages, num_stages: int, name: str = 'frozen_stages') -> int:
    """``-1`` freezes nothing, ``0`` the stem, ``k`` the stem and stages ``1..k``."""
    frozen_stages = _from_numpy(frozen_stages)
    if not _is_int(frozen_stages):
        raise TypeError(f'{name} must be an int in -1..{num_stages}, got {shown(frozen_stages)} '
                        f'({type(frozen_stages).__name__})')
    if not -1 <= frozen_stages <= num_stages:
        raise ValueError(f'{name} must be in -1..{num_stages} (-1: nothing, 0: stem, k: stem and '
                         f'stages 1..k), got {shown(frozen_stages)}')
    return int(frozen_stages)


def check_bool(name: str, value) -> bool:
    value = _from_numpy(value)
    if not isinstance(value, bool):
        raise TypeError(f'{name} must be a bool (True or False), got {shown(value)} '
                        f'({type(value).__name__})')
    return value


def check_rate(name: str, value) -> float:
    """A probability such as ``drop_path_rate``: a number in ``[0, 1)``."""
    value = _from_numpy(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{name} must be a float in [0, 1), got {shown(value)} '
                        f'({type(value).__name__})')
    if not 0.0 <= value < 1.0:
        raise ValueError(f'{name} must be a float in [0, 1), got {shown(value)}')
    return float(value)


def check_cfg_keys(name: str, cfg, allowed: Iterable[str]) -> dict:
    """A config dict whose keys are all in ``allowed`` -> a plain copy; names ``name`` in the
    ``TypeError``/``ValueError`` otherwise."""
    if not isinstance(cfg, Mapping):
        raise TypeError(f'{name} must be a dict, got {shown(cfg)} ({type(cfg).__name__})')
    allowed = list(allowed)
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ValueError(f'{name} has unknown keys {unknown}; allowed keys: {allowed}')
    return dict(cfg)
