"""Reading checkpoint files without running code from them.

``load_file(path)`` reads, by content (not by extension):

* ``.safetensors`` files natively (memory-mapped, no pickle at all);
* ``torch.save`` zip files with ``torch.load(weights_only=True, mmap=True)``: tensors stay backed
  by the file's pages until copied into a model, so loading does not double peak memory. Only
  exactly harmless extra types are allow-listed, inside a ``safe_globals`` context (the process-wide
  allow-list is never changed): numpy arrays, numpy scalars and dtypes (``meta`` of mmcv/mmengine
  checkpoints) and mmengine's ``HistoryBuffer`` (``message_hub`` of mmengine runner checkpoints);
* anything else a checkpoint references (a custom class in ``meta``, or ``os.system`` in a crafted
  file) is never imported nor called: the object is rebuilt as an inert :class:`Placeholder`, a
  warning names it, and the state dict is accepted only if it holds tensors alone. There is no
  fallback to unsafe unpickling; ``allowed_globals`` is the explicit opt-in for a trusted type;
* legacy (pre zip) ``torch.save`` files with ``weights_only=True`` (no mmap: the format has none);
* plain pickles of numpy arrays (detectron2 ``.pkl``) with an unpickler that only rebuilds numpy
  arrays, scalars and dtypes.
"""
import importlib
import logging
import os
import pickle
import struct
from typing import Any, Dict, Iterable, List, Optional, Sequence

import torch
from mmengine.logging import print_log

__all__ = ['load_file', 'save_file', 'UnsafeCheckpointError', 'Placeholder', 'harmless_globals',
           'detect_file_format']

# first bytes of a legacy torch.save file: pickle protocol 2 + the long 0x1950a86a20f9469cfc6c
_LEGACY_TORCH_MAGIC = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')
# Globals from these modules are refused outright rather than replaced by placeholders: a file
# naming them was made to run code (placeholders would be inert, but the file is not trustworthy).
_CODE_RUNNING_MODULES = frozenset((
    'os', 'posix', 'nt', 'sys', 'subprocess', 'builtins', '__builtin__', 'importlib', 'runpy',
    'shutil', 'socket', 'pty', 'ctypes', 'pickle', '_pickle', 'marshal', 'types', 'code',
    'codeop', 'webbrowser', 'pdb', 'platform', 'signal', 'multiprocessing', 'threading',
    'functools', 'operator'))


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs code that is not allow-listed to be unpickled; nothing was run."""


class Placeholder:
    """An inert stand-in for an object whose class or function a checkpoint names but that is
    not allow-listed. Nothing of the named global is imported or called: the arguments and state
    the pickle carried are only stored."""

    global_name = '?'

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f'<Placeholder for {self.global_name}>'


def _placeholder_class(name: str) -> type:
    return type('Placeholder', (Placeholder,), {'global_name': name, '__module__': __name__})


def _numpy_globals() -> List[tuple]:
    import numpy as np
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    out = [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    # numpy 2 pickles as numpy._core.*, numpy 1 as numpy.core.*: the same two functions.
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        out.append((multiarray._reconstruct, f'{mod}._reconstruct'))
        out.append((multiarray.scalar, f'{mod}.scalar'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 may name dtype classes
    if dtypes is not None:
        for name in dir(dtypes):
            obj = getattr(dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                out.append((obj, f'numpy.dtypes.{name}'))
    return out


def _restricted_getattr(placeholders: bool):
    """``getattr`` as the pickles of ``HistoryBuffer`` use it (``HistoryBuffer.min``, ...) and
    nothing else: any other attribute lookup is refused (or, when placeholders are allowed,
    becomes a placeholder) so no attribute of an arbitrary object is ever reached."""
    from mmengine.logging import HistoryBuffer

    def getattr_(obj, name, *default):
        if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
            return getattr(HistoryBuffer, name)
        if placeholders:
            return _placeholder_class(f'getattr({obj!r}, {name!r})')()
        raise UnsafeCheckpointError(f'refused getattr({obj!r}, {name!r}) while unpickling')

    return getattr_


def harmless_globals(placeholders: bool = False) -> List[tuple]:
    """``(object, 'module.name')`` pairs allow-listed on top of torch's weights-only defaults."""
    from mmengine.logging import HistoryBuffer
    getattr_ = _restricted_getattr(placeholders)
    return _numpy_globals() + [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (getattr_, 'builtins.getattr'),
    ]


def _resolve_globals(names: Optional[Iterable]) -> List[tuple]:
    """User opt-in: ``['package.module.Class', ...]`` (or the objects themselves)."""
    out = []
    for item in names or ():
        if not isinstance(item, str):
            out.append(item)
            continue
        module, _, attr = item.rpartition('.')
        if not module:
            raise ValueError(f'allowed_globals entries are "module.Name" strings, got {item!r}')
        out.append((getattr(importlib.import_module(module), attr), item))
    return out


def detect_file_format(path: str) -> str:
    """``'safetensors'``, ``'torch'`` (zip), ``'torch-legacy'`` or ``'pickle'``, from the bytes."""
    with open(path, 'rb') as f:
        head = f.read(16)
    if head[:4] == b'PK\x03\x04':
        return 'torch'
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return 'torch-legacy'
    if len(head) >= 9:
        (header_len,) = struct.unpack('<Q', head[:8])
        if head[8:9] == b'{' and 0 < header_len < os.path.getsize(path):
            return 'safetensors'
    return 'pickle'


def _load_safetensors(path: str, map_location) -> Dict[str, torch.Tensor]:
    from safetensors import safe_open
    device = 'cpu'
    if isinstance(map_location, (str, torch.device)):
        device = str(map_location)
    out = {}
    # safe_open memory-maps the file: tensors are read lazily, page by page
    with safe_open(path, framework='pt', device=device) as f:
        for key in f.keys():
            out[key] = f.get_tensor(key)
    return out


def _torch_load(path: str, map_location, mmap: bool, extra: Sequence[tuple]):
    with torch.serialization.safe_globals(list(extra)):
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


def _load_torch(path: str, map_location, allowed_globals, mmap: bool, logger) -> Any:
    user = _resolve_globals(allowed_globals)
    try:
        return _torch_load(path, map_location, mmap, harmless_globals() + user)
    except pickle.UnpicklingError as first_error:
        if not mmap:  # legacy format: the pickle cannot be inspected statically
            raise UnsafeCheckpointError(
                f'refused to unpickle {path}: it needs a type that is not allow-listed for '
                f'weights-only loading ({first_error}). Nothing from it was run. If you trust '
                f'the file, name the type in allowed_globals=["module.Name"].') from None
        # a second pass with inert placeholders for whatever is not allow-listed (the static
        # scan lists the globals; lookups such as getattr(cls, name) become placeholders too)
        unknown = _unknown_globals(path, harmless_globals() + user)
    dangerous = [name for name in unknown if name.split('.')[0] in _CODE_RUNNING_MODULES]
    if dangerous:
        raise UnsafeCheckpointError(
            f'refused to load {path}: it names {", ".join(dangerous)}, which can run code; a '
            f'weights file has no reason to. Nothing from it was run.')
    stubs = [(_placeholder_class(name), name) for name in unknown]
    try:
        obj = _torch_load(path, map_location, mmap,
                          harmless_globals(placeholders=True) + user + stubs)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(f'refused to unpickle {path}: {e}. Nothing from it was '
                                    f'run.') from None
    return _PlaceholderReport(path, unknown, obj)


def _unknown_globals(path: str, extra: Sequence[tuple]) -> List[str]:
    with torch.serialization.safe_globals(list(extra)):
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))


class _PlaceholderReport(dict):
    """The loaded object plus the globals that became placeholders (unwrapped by load_file)."""

    def __init__(self, path, names, obj):
        super().__init__(obj=obj)
        self.path, self.names = path, names


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler for plain pickles of numpy arrays (detectron2 ``.pkl``): builds numpy arrays,
    scalars and dtypes and plain containers; any other global is refused before it is imported."""

    def find_class(self, module, name):
        if module == 'collections' and name == 'OrderedDict':
            import collections
            return collections.OrderedDict
        if module in ('__builtin__', 'builtins') and name in ('set', 'frozenset', 'bytearray'):
            import builtins
            return getattr(builtins, name)
        if module == '_codecs' and name == 'encode':
            import codecs
            return codecs.encode
        allowed = {full: obj for obj, full in _numpy_globals()}
        full = f'{module}.{name}'
        if full in allowed:
            return allowed[full]
        raise UnsafeCheckpointError(
            f'refused to unpickle global {full!r}: this file is read as a pickle of numpy arrays '
            f'(detectron2 .pkl) and only numpy arrays, scalars and dtypes may be rebuilt')


def _load_pickle(path: str) -> Any:
    with open(path, 'rb') as f:
        # latin1: detectron2's .pkl files were often written by Python 2
        return _NumpyOnlyUnpickler(f, encoding='latin1').load()


def load_file(path: str,
              map_location='cpu',
              allowed_globals: Optional[Iterable] = None,
              logger='current') -> Any:
    """Load a checkpoint file safely (see the module docstring); returns what the file holds.

    Args:
        path: a local file (``.pth``, ``.pt``, ``.bin``, ``.ckpt``, ``.safetensors``, ``.pkl``).
        map_location: as ``torch.load``.
        allowed_globals: ``['module.Name', ...]`` the caller trusts in this one file.
    Raises:
        FileNotFoundError, UnsafeCheckpointError.
    """
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    kind = detect_file_format(path)
    if kind == 'safetensors':
        return _load_safetensors(path, map_location)
    if kind == 'pickle':
        try:
            return _load_pickle(path)
        except UnsafeCheckpointError as e:
            raise UnsafeCheckpointError(f'{path}: {e}') from None
        except Exception as e:  # noqa: BLE001 - not a pickle at all
            raise ValueError(f'{path} is not a checkpoint mmbackbones can read (not a '
                             f'torch.save file, a safetensors file or a pickle of numpy '
                             f'arrays): {e}') from None
    obj = _load_torch(path, map_location, allowed_globals, mmap=(kind == 'torch'), logger=logger)
    if isinstance(obj, _PlaceholderReport):
        print_log(f'{path}: the checkpoint names {len(obj.names)} global(s) that are not '
                  f'allow-listed: {", ".join(obj.names)}. They were NOT imported or run; their '
                  f'objects were replaced by inert placeholders. Only tensors are loaded from it.',
                  logger=logger, level=logging.WARNING)
        inner = obj['obj']
        if isinstance(inner, dict):
            inner = dict(inner)
            inner['_mmbackbones_placeholders'] = list(obj.names)
        return inner
    return obj


def save_file(state_dict: Dict[str, torch.Tensor], path: str,
              metadata: Optional[Dict[str, str]] = None) -> str:
    """Write ``state_dict`` as safetensors (``.safetensors``) or ``torch.save`` (other suffixes)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file as st_save
        # safetensors refuses tensors sharing memory (views, mmap slices): give each its own
        tensors = {k: v.detach().contiguous().clone() if _shares(v) else v.detach().contiguous()
                   for k, v in state_dict.items()}
        st_save(tensors, path, metadata={k: str(v) for k, v in (metadata or {}).items()})
    else:
        torch.save({'state_dict': dict(state_dict), 'meta': dict(metadata or {})}, path)
    return path


def _shares(tensor: torch.Tensor) -> bool:
    storage = tensor.untyped_storage()
    return storage.nbytes() != tensor.numel() * tensor.element_size()
