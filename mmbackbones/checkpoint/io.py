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
* a zip whose records are compressed (DEFLATE; ``torch.save`` stores them uncompressed, a zip
  re-packed by another tool may not) is read into memory by torch's zip reader, which inflates
  them (memory-mapping would take the compressed bytes as tensor data); other compression methods
  are refused by name, and a zip cut inside its central directory is reported as truncated;
* only regular files are opened: a directory, FIFO, socket or device is refused by what it is
  (never opened, so a FIFO cannot block);
* legacy (pre zip) ``torch.save`` files with ``weights_only=True`` (no mmap: the format has none);
* plain pickles of numpy arrays (detectron2 ``.pkl``) with an unpickler that only rebuilds numpy
  arrays, scalars and dtypes.
"""
import importlib
import logging
import os
import pickle
import stat
import struct
import zipfile
from typing import Any, Dict, Iterable, List, Optional, Sequence

import torch
from mmengine.logging import print_log

from ..utils.fileio import atomic_output

__all__ = ['load_file', 'save_file', 'UnsafeCheckpointError', 'CorruptCheckpointError',
           'NotACheckpointFileError', 'Placeholder', 'harmless_globals', 'detect_file_format',
           'atomic_output']

# first bytes of a legacy torch.save file: pickle protocol 2 + the long 0x1950a86a20f9469cfc6c
_LEGACY_TORCH_MAGIC = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'
_MAX_SAFETENSORS_HEADER = 100 << 20  # safetensors' own limit on the JSON header
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


class CorruptCheckpointError(ValueError):
    """A checkpoint file is truncated or malformed; the message names the file and its format."""


class NotACheckpointFileError(CorruptCheckpointError):
    """The path is a directory, FIFO, socket or device, not a file: nothing was read from it."""


_FORMAT_NAMES = {'safetensors': 'safetensors', 'torch': 'torch.save zip',
                 'torch-legacy': 'legacy torch.save', 'pickle': 'pickle'}


def _corrupt(path: str, kind: str, problem: str) -> CorruptCheckpointError:
    size = os.path.getsize(path)
    return CorruptCheckpointError(f'{path} ({_FORMAT_NAMES[kind]} file, {size} bytes) cannot be '
                                  f'read: {problem}')


def _read(path: str, kind: str, load, src: Optional[str] = None):
    """Run ``load()``; a truncated or malformed file becomes one :class:`CorruptCheckpointError`
    naming the file, its format and what is wrong (refusals of unsafe content pass through).
    ``src`` is the name the file was read under (``/proc/self/fd/N``), replaced by ``path``."""
    try:
        return load()
    except (UnsafeCheckpointError, CorruptCheckpointError, FileNotFoundError, PermissionError):
        raise
    except Exception as e:  # noqa: BLE001 - torch/safetensors raise many types for bad files
        text = ' '.join(str(e).split()) or type(e).__name__
        if src and src != path:
            text = text.replace(src, path)
        if kind == 'safetensors':
            problem = _safetensors_problem(src or path, os.path.getsize(path)) or text
        elif kind == 'torch' and ('central directory' in text or 'zip archive' in text):
            problem = 'truncated or not a complete zip archive (' + text[:200] + ')'
        elif isinstance(e, EOFError) or 'EOF' in text:
            problem = 'truncated: the data ends early (' + text[:200] + ')'
        else:
            problem = text[:300]
        raise _corrupt(path, kind, problem) from None


def _safetensors_problem(path: str, size: int) -> Optional[str]:
    """What is wrong with a safetensors file, in words (None when not found here)."""
    import json
    with open(path, 'rb') as f:
        (header_len,) = struct.unpack('<Q', f.read(8))
        raw = f.read(header_len)
    if len(raw) < header_len:
        return f'truncated: the header says {header_len} bytes of JSON, the file ends before'
    try:
        header = json.loads(raw)
    except ValueError as e:
        return f'its JSON header is malformed ({e})'
    ends = [v['data_offsets'][1] for k, v in header.items()
            if k != '__metadata__' and isinstance(v, dict) and 'data_offsets' in v]
    needed = 8 + header_len + max(ends, default=0)
    if size < needed:
        return f'truncated: the header describes {needed} bytes, the file has {size}'
    return None


def _duplicate_safetensors_names(src: str) -> List[str]:
    """Tensor names a safetensors header lists more than once (the format forbids it; the Rust
    reader keeps the last one silently). Empty when none, or when the header is not readable
    JSON (the reader reports that itself)."""
    import json
    with open(src, 'rb') as f:
        (header_len,) = struct.unpack('<Q', f.read(8))
        raw = f.read(header_len)
    try:  # every JSON object as its list of (key, value) pairs: duplicates survive
        top = json.loads(raw, object_pairs_hook=list)
    except ValueError:
        return []
    counts: Dict[str, int] = {}
    for key, _ in top if isinstance(top, list) else ():
        counts[key] = counts.get(key, 0) + 1
    return [key for key, n in counts.items() if n > 1]


_ZIP_METHODS = {zipfile.ZIP_STORED: 'stored', zipfile.ZIP_DEFLATED: 'DEFLATE',
                zipfile.ZIP_BZIP2: 'bzip2', zipfile.ZIP_LZMA: 'LZMA'}


def _scan_zip(path: str, src: str) -> List[str]:
    """Check a zip's central directory before torch reads it; the names of its compressed
    (DEFLATE) records. A missing or cut central directory, a record reaching past the end of
    the file, or a compression torch cannot read is a :class:`CorruptCheckpointError`."""
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(src) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, struct.error, EOFError) as e:
        raise _corrupt(path, 'torch', f'truncated or not a complete zip archive: its central '
                                      f'directory is missing or cut short ({e})') from None
    past = [i.filename for i in infos if i.header_offset + i.compress_size > size]
    if past:
        raise _corrupt(path, 'torch', f'truncated: record {past[0]!r} reaches past the end of '
                                      f'the file')
    odd = [i for i in infos if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)]
    if odd:
        method = _ZIP_METHODS.get(odd[0].compress_type, f'method {odd[0].compress_type}')
        raise _corrupt(path, 'torch', f'record {odd[0].filename!r} is compressed with {method}, '
                                      f'which torch\'s zip reader cannot read (torch.save '
                                      f'stores records uncompressed; re-save the file with it)')
    return [i.filename for i in infos if i.compress_type == zipfile.ZIP_DEFLATED]


_FILE_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO (named pipe)'),
               (stat.S_ISSOCK, 'a socket'), (stat.S_ISCHR, 'a character device'),
               (stat.S_ISBLK, 'a block device'))


def _refuse_non_file(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    what = next((name for test, name in _FILE_KINDS if test(mode)), 'not a regular file')
    raise NotACheckpointFileError(f'{path} is {what}, not a checkpoint file: give the path of '
                                  f'a file (.pth, .safetensors, ...). Nothing was read from it')


def _open_checkpoint(path: str) -> int:
    """A read-only descriptor of the regular file ``path``. The kind of file is checked before
    opening (opening a FIFO blocks, opening a device may act on it) and again on the descriptor,
    so a file swapped meanwhile is refused too."""
    try:
        _refuse_non_file(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) |
                     getattr(os, 'O_NOCTTY', 0) | getattr(os, 'O_BINARY', 0))
    except FileNotFoundError:
        raise FileNotFoundError(f'checkpoint file not found: {path}') from None
    try:
        _refuse_non_file(path, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fd_name(fd: int, path: str) -> str:
    """A name that opens exactly the file behind ``fd`` (Linux ``/proc/self/fd/N``; ``path``
    elsewhere). Readers given it cannot be swapped to another file, and torch, which picks the
    safetensors reader by the ``.safetensors`` suffix, reads the file by its content."""
    name = f'/proc/self/fd/{fd}'
    return name if os.path.exists(name) else path


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
    # pickle protocol 5 rebuilds arrays with numeric._frombuffer(buffer, dtype, shape, order)
    for mod in ('numpy.core.numeric', 'numpy._core.numeric'):
        out.append((_frombuffer, f'{mod}._frombuffer'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 may name dtype classes
    if dtypes is not None:
        for name in dir(dtypes):
            obj = getattr(dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                out.append((obj, f'numpy.dtypes.{name}'))
    return out


def _frombuffer(buf, dtype, shape, order):
    """numpy's protocol-5 array rebuild (``numpy._core.numeric._frombuffer``), re-stated so that
    exactly this, and no other function of that module, is reachable from a pickle."""
    import numpy as np
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise UnsafeCheckpointError(f'refused _frombuffer of a {type(buf).__name__}')
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


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
        if head[8:9] == b'{' and 0 < header_len < _MAX_SAFETENSORS_HEADER:
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


def _torch_load(src: str, map_location, mmap: bool, extra: Sequence[tuple]):
    with torch.serialization.safe_globals(list(extra)):
        if src.endswith('.safetensors'):  # torch.load would pick its reader by this suffix
            with open(src, 'rb') as f:
                return torch.load(f, map_location=map_location, weights_only=True)
        return torch.load(src, map_location=map_location, weights_only=True, mmap=mmap)


def _load_torch(path: str, map_location, allowed_globals, mmap: bool,
                src: Optional[str] = None, legacy: Optional[bool] = None) -> Any:
    legacy = not mmap if legacy is None else legacy
    src = src or path
    user = _resolve_globals(allowed_globals)
    try:
        return _torch_load(src, map_location, mmap, harmless_globals() + user)
    except pickle.UnpicklingError as first_error:
        if legacy:  # the pickle of the legacy format cannot be inspected statically
            raise UnsafeCheckpointError(
                f'refused to unpickle {path}: it needs a type that is not allow-listed for '
                f'weights-only loading ({first_error}). Nothing from it was run. If you trust '
                f'the file, name the type in allowed_globals=["module.Name"].') from None
        # a second pass with inert placeholders for whatever is not allow-listed (the static
        # scan lists the globals; lookups such as getattr(cls, name) become placeholders too)
        unknown = _unknown_globals(src, harmless_globals() + user)
    dangerous = [name for name in unknown if name.split('.')[0] in _CODE_RUNNING_MODULES]
    if dangerous:
        raise UnsafeCheckpointError(
            f'refused to load {path}: it names {", ".join(dangerous)}, which can run code; a '
            f'weights file has no reason to. Nothing from it was run.')
    stubs = [(_placeholder_class(name), name) for name in unknown]
    try:
        obj = _torch_load(src, map_location, mmap,
                          harmless_globals(placeholders=True) + user + stubs)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(f'refused to unpickle {path}: {e}. Nothing from it was '
                                    f'run.') from None
    return _PlaceholderReport(path, unknown, obj)


def _unknown_globals(src: str, extra: Sequence[tuple]) -> List[str]:
    with torch.serialization.safe_globals(list(extra)):
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(src))


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


def _load_open(path: str, src: str, map_location, allowed_globals) -> Any:
    """``load_file`` on an opened file: ``src`` reads it, ``path`` names it in messages."""
    kind = detect_file_format(src)
    if kind == 'safetensors':
        duplicates = _duplicate_safetensors_names(src)
        if duplicates:
            raise _corrupt(path, kind, f'its header names {len(duplicates)} tensor(s) more than '
                                       f'once ({", ".join(map(repr, duplicates[:5]))}); the '
                                       f'format forbids duplicate names, so which definition is '
                                       f'meant is unknown')
        return _read(path, kind, lambda: _load_safetensors(src, map_location), src)
    if kind == 'pickle':
        try:
            return _load_pickle(src)
        except UnsafeCheckpointError as e:
            raise UnsafeCheckpointError(f'{path}: {e}') from None
        except Exception as e:  # noqa: BLE001 - not a pickle at all
            what = 'truncated' if isinstance(e, EOFError) or 'truncated' in str(e) else \
                f'unreadable ({type(e).__name__}: {e})'
            raise CorruptCheckpointError(
                f'{path} is not a checkpoint mmbackbones can read: read as a plain pickle (it is '
                f'not a torch.save zip or a safetensors file by its first bytes), it is '
                f'{what}') from None
    mmap = kind == 'torch'
    if kind == 'torch' and _scan_zip(path, src):
        # compressed records: memory-mapping would take their compressed bytes as tensor data;
        # torch's zip reader inflates them when it reads the records into memory
        mmap = False
    return _read(path, kind, lambda: _load_torch(path, map_location, allowed_globals, mmap, src,
                                                 legacy=kind == 'torch-legacy'), src)


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
        FileNotFoundError, UnsafeCheckpointError, CorruptCheckpointError (a truncated or
        malformed file: the message names the file, its format and what is wrong).
    """
    path = os.path.expanduser(os.fspath(path))
    fd = _open_checkpoint(path)
    try:
        obj = _load_open(path, _fd_name(fd, path), map_location, allowed_globals)
    finally:
        os.close(fd)
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
    """Write ``state_dict`` as safetensors (``.safetensors``) or ``torch.save`` (other suffixes),
    atomically (see :func:`atomic_output`)."""
    path = os.fspath(path)
    with atomic_output(path) as tmp:
        if path.endswith('.safetensors'):
            from safetensors.torch import save_file as st_save

            # safetensors refuses tensors sharing memory (views, mmap slices): copy those
            tensors = {k: v.detach().contiguous().clone() if _shares(v) else
                       v.detach().contiguous() for k, v in state_dict.items()}
            st_save(tensors, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})
        else:
            torch.save({'state_dict': dict(state_dict), 'meta': dict(metadata or {})}, tmp)
    return path


def _shares(tensor: torch.Tensor) -> bool:
    storage = tensor.untyped_storage()
    return storage.nbytes() != tensor.numel() * tensor.element_size()
