"""mmengine integration: checkpoint schemes and the ``Pretrained`` initializer.

mmengine's path is ``init_cfg=dict(type='Pretrained', ...)`` -> ``WEIGHT_INITIALIZERS`` ->
``PretrainedInit`` -> ``CheckpointLoader`` schemes -> ``torch.load``. We extend it at two points
instead of forking it:

* ``CheckpointLoader`` schemes: local paths and ``file://`` (safe loading, see ``io.py``),
  ``http(s)://`` (download into our cache with a hash check, then safe loading), and the zoo names
  ``mmbackbones://``, ``mmcls://``, ``torchvision://``, ``timm://``, ``mmdet://``, ``mmseg://``,
  ``official://`` (a detector's or segmentor's row takes its ``backbone.`` part), and
  mmengine's other schemes (``modelzoo://`` = ``torchvision://``, ``open-mmlab://``,
  ``s3://``/``petrel://`` through mmengine's file backend; ``pavi://`` is refused), so no route
  reaches a plain ``torch.load``. http(s) and zoo files found in torch hub's cache (where
  mmengine puts them) are used from there, hash-checked. mmengine's own runner
  (``load_from``, ``resume``) therefore loads safely too once mmbackbones' models are imported.
  ``CheckpointLoader.load_checkpoint`` itself is replaced by the same steps whose log line shows
  a URL without its credentials (``user:password@`` becomes ``***@``).
* ``Pretrained`` in ``WEIGHT_INITIALIZERS``: a subclass of mmengine's ``PretrainedInit`` that
  keeps its arguments (``checkpoint``, ``prefix``, ``map_location``) and adds ``strict``,
  ``convert`` and ``allowed_globals``; it refuses half-loads unless ``strict=False`` (see
  :class:`PretrainedInit`); after loading it logs one report of what matched. Modules
  of other libraries (an mmdet ``ResNet``) given only mmengine's arguments keep mmengine's
  loading semantics, so importing mmbackbones changes how their files are read (safely), not
  what ends up in them.

Installed by :func:`register`, called once by ``mmbackbones.checkpoint``'s import (which the
first backbone constructed triggers), so a backbone, however it was built, always has it.
"""
import contextlib
import contextvars
import dataclasses
import logging
import os
from typing import Dict, Iterable, List, Optional

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit as _MMEnginePretrainedInit
from mmengine.model.weight_init import update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from .converters import convert_state_dict
from .download import download, load_downloaded, redact_url
from .io import load_file
from .state import (LoadReport, check_strict, extract_state_dict, load_state_dict,
                    select_prefix)
from .keys import own_state_dict
from .zoo import ZOO_SCHEMES, resolve, split_scheme

__all__ = ['PretrainedInit', 'load_checkpoint', 'read_checkpoint', 'read_state_dict',
           'StateDictRead', 'register_schemes']

_ALLOWED_GLOBALS: contextvars.ContextVar = contextvars.ContextVar('mmbackbones_allowed_globals',
                                                                  default=None)


@contextlib.contextmanager
def allowed_globals(names: Optional[Iterable]):
    """Within the block, scheme loaders accept these extra ``'module.Name'`` globals."""
    token = _ALLOWED_GLOBALS.set(list(names) if names else None)
    try:
        yield
    finally:
        _ALLOWED_GLOBALS.reset(token)


def load_from_safe_local(filename, map_location=None):
    return load_file(filename, map_location=map_location or 'cpu',
                     allowed_globals=_ALLOWED_GLOBALS.get())


def load_from_safe_file_url(filename, map_location=None):
    from urllib.parse import unquote, urlparse
    return load_from_safe_local(unquote(urlparse(filename).path), map_location)


def _download_once(url: str, **kwargs) -> str:
    """Rank 0 downloads, the other ranks then find the file in the cache."""
    rank, world_size = get_dist_info()
    path = download(url, **kwargs) if rank == 0 else None
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download(url, **kwargs)
    return path


def load_from_safe_http(filename, map_location=None):
    # a download that does not parse is removed from the cache (see load_downloaded)
    return load_downloaded(_download_once(filename), filename,
                           lambda path: load_from_safe_local(path, map_location))


def load_from_zoo(filename, map_location=None):
    entry = resolve(filename)
    path = _download_once(entry['url'], sha256=entry.get('sha256'))
    checkpoint = load_downloaded(path, entry['url'],
                                 lambda p: load_from_safe_local(p, map_location),
                                 sha256=entry.get('sha256'))
    state_dict = extract_state_dict(checkpoint, source=f'{filename} ({path})')
    if entry.get('prefix'):
        state_dict = select_prefix(state_dict, entry['prefix'], source=filename)
    return {'state_dict': state_dict,
            'meta': {'mmbackbones_format': entry.get('format'), 'zoo_name': filename,
                     'path': path}}


def load_from_safe_openmmlab(filename, map_location=None):
    """``open-mmlab://name``: mmengine's table of URLs, our download and safe loading."""
    from mmengine.runner.checkpoint import get_deprecated_model_names, get_external_models
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    urls = get_external_models()
    if name not in urls:
        raise KeyError(f'unknown open-mmlab checkpoint {name!r}')
    url = urls[name]
    if not url.startswith(('http://', 'https://')):
        from mmengine.runner.checkpoint import _get_mmengine_home
        return load_from_safe_local(os.path.join(_get_mmengine_home(), url), map_location)
    return load_from_safe_http(url, map_location)


def load_from_modelzoo(filename, map_location=None):
    """``modelzoo://name``: mmengine's deprecated spelling of ``torchvision://name``."""
    print_log('The "modelzoo://" scheme is deprecated, use "torchvision://"', logger='current',
              level=30)
    return load_from_zoo('torchvision://' + filename.split('://', 1)[1], map_location)


def load_from_safe_remote(filename, map_location=None):
    """``s3://``/``petrel://`` (optionally ``backend:s3://``): the bytes come through mmengine's
    file backend, then load safely from a private temporary file."""
    import tempfile

    from mmengine.fileio import get
    data = get(filename)
    with tempfile.TemporaryDirectory(prefix='mmbackbones-') as tmp:
        path = os.path.join(tmp, os.path.basename(filename.rstrip('/')) or 'checkpoint')
        with open(path, 'wb') as f:
            f.write(data)
        # a memory-mapped result stays valid after the folder is removed (POSIX unlink)
        return load_file(path, map_location=map_location or 'cpu',
                         allowed_globals=_ALLOWED_GLOBALS.get())


def refuse_pavi(filename, map_location=None):
    raise ValueError(f'{filename}: pavi:// checkpoints are not supported by mmbackbones\' safe '
                     f'loader (mmengine would unpickle them without checks). Download the file '
                     f'and give its local path instead')


# every scheme mmengine knows, and ours; regex prefixes exactly as mmengine spells them
SCHEMES = (
    ('', load_from_safe_local),
    ('file://', load_from_safe_file_url),
    (('http://', 'https://'), load_from_safe_http),
    (tuple(f'{s}://' for s in ZOO_SCHEMES), load_from_zoo),
    ('modelzoo://', load_from_modelzoo),
    (('open-mmlab://', 'openmmlab://'), load_from_safe_openmmlab),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_safe_remote),
    ('pavi://', refuse_pavi),
)


def register_schemes() -> None:
    """Put our loaders into mmengine's ``CheckpointLoader`` for every scheme, and its
    ``load_checkpoint`` (what mmengine's runner calls) logs URLs without credentials
    (idempotent)."""
    for prefixes, loader in SCHEMES:
        CheckpointLoader.register_scheme(list(prefixes) if isinstance(prefixes, tuple) else
                                         prefixes, loader, force=True)
    CheckpointLoader.load_checkpoint = classmethod(_load_checkpoint_redacted)


def _load_checkpoint_redacted(cls, filename, map_location=None, logger='current'):
    """``CheckpointLoader.load_checkpoint``'s own steps, with a log line that holds no URL
    credentials."""
    loader = cls._get_checkpoint_loader(filename)
    print_log(f'Loads checkpoint by {loader.__name__[10:]} backend from path: '
              f'{redact_url(filename)}', logger=logger)
    return loader(filename, map_location)


def read_checkpoint(filename: str, map_location='cpu', allowed_globals=None, logger='current'):
    """What a path, URL or zoo name holds, through mmengine's ``CheckpointLoader``."""
    filename = os.fspath(filename)
    with _allowed(allowed_globals):
        return _load_checkpoint_redacted(CheckpointLoader, filename, map_location, logger)


def _allowed(names):
    return allowed_globals(names) if names else contextlib.nullcontext()


@dataclasses.dataclass
class StateDictRead:
    """What :func:`read_state_dict` found: the weights and how they were obtained."""

    state_dict: Dict[str, torch.Tensor]
    source: str
    prefix: Optional[str] = None
    converter: Optional[str] = None  # the converter used (e.g. 'timm_resnet'), None: as stored
    placeholders: List[str] = dataclasses.field(default_factory=list)
    # every tensor of the file, before prefix selection and conversion (``convert`` reports and
    # ``--keep-all`` writes what the conversion left out)
    original: Dict[str, torch.Tensor] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def notes(self) -> List[str]:
        """One line per fact worth telling the user (shown in a :class:`LoadReport`)."""
        notes = []
        if self.prefix:
            notes.append(f'prefix {self.prefix!r}')
        if self.converter:
            notes.append(f'converted with {self.converter}')
        if self.placeholders:
            notes.append(f'non-weight objects replaced by placeholders: '
                         f'{", ".join(self.placeholders)}')
        return notes


def read_state_dict(filename: str, prefix: Optional[str] = None, convert='auto',
                    target: Optional[nn.Module] = None, map_location='cpu',
                    allowed_globals=None, logger='current') -> StateDictRead:
    """The weights of ``filename`` under ``prefix``, converted to mmbackbones names
    (``convert='auto'`` detects the layout; with ``target`` it converts only when that fits the
    module better), as a :class:`StateDictRead`."""
    checkpoint = read_checkpoint(filename, map_location, allowed_globals, logger)
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    filename = redact_url(str(filename))  # only named from here on
    state_dict = original = extract_state_dict(checkpoint, source=str(filename))
    scheme, _ = split_scheme(str(filename))
    hint = ('zoo names hold the backbone weights already (prefix removed): drop prefix='
            if scheme else '')
    state_dict = select_prefix(state_dict, prefix, source=str(filename), hint=hint)
    target_shapes = None
    if target is not None:
        target_shapes = {k: tuple(v.shape)
                         for k, v in own_state_dict(_unwrap(target)).items()}
    state_dict, used = convert_state_dict(state_dict, convert, target_shapes,
                                          hint=meta.get('mmbackbones_format'))
    placeholders = checkpoint.get('_mmbackbones_placeholders') if isinstance(
        checkpoint, dict) else None
    return StateDictRead(state_dict, str(filename), prefix, used, list(placeholders or ()),
                         original)


def _unwrap(module):
    from mmengine.model import is_model_wrapper
    while is_model_wrapper(module):
        module = module.module
    return module


def load_checkpoint(module: nn.Module, filename: str, prefix: Optional[str] = None,
                    strict: Optional[bool] = None, convert='auto', map_location='cpu',
                    allowed_globals=None, logger='current') -> LoadReport:
    """Load ``filename`` (path, URL or zoo name) into ``module``; returns the report it logged.

    ``strict``: ``None`` (default) refuses a half-load (see
    :func:`~mmbackbones.checkpoint.state.check_state_dict_fits`: tensors of the model left at
    init, or checkpoint tensors of its modules dropped; named exceptions such as classifier
    heads and DCN offsets load); ``True``: every key must match; ``False``: load what matches
    (the explicit opt-out, named in the report).

    Raises ``KeyError`` (a prefix matching nothing), :class:`CheckpointMismatchError` (shape
    mismatch; a half-load), :class:`UnsafeCheckpointError`, ``DownloadError``/``ChecksumError``.
    """
    strict = check_strict(strict)
    read = read_state_dict(filename, prefix, convert, module, map_location, allowed_globals,
                           logger)
    return load_state_dict(module, read.state_dict, strict=strict, source=read.source,
                           notes=read.notes, logger=logger, converter=read.converter)


class PretrainedInit(_MMEnginePretrainedInit):
    """``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone', strict=None,
    convert='auto', allowed_globals=None)``.

    Args:
        checkpoint: a local path, a URL, or a zoo name (``mmcls://resnet50``, ...).
        prefix: the sub-module to take (``'backbone'`` for an mmpretrain/mmdet checkpoint).
        map_location: as ``torch.load``.
        strict: ``None`` (default; mmengine's ``Pretrained`` has no such argument, so every
            config written for mmengine gets it): no half-load. A checkpoint that would leave
            tensors of the backbone at init, or whose tensors of the backbone's modules would be
            dropped, is refused naming the keys; classifier heads, DCN offsets, plugins, output
            norms of intermediate ``out_indices`` and stages not built load and are named in the
            report. ``True``: every key must match (no exception). ``False``: the explicit
            opt-out, load what matches (what was left out is named in the report).
        convert: ``'auto'`` (detect from the keys), ``'timm'``, ``'torchvision'``,
            ``'mmpretrain'``, ``'detectron2'``, ``'openmmlab'`` (mmdet/mmseg deep stems) or
            ``None``.
        allowed_globals: extra ``'module.Name'`` types trusted in this file's metadata.
    """

    def __init__(self, checkpoint, prefix=None, map_location='cpu', strict=None,
                 convert='auto', allowed_globals=None):
        super().__init__(checkpoint, prefix=prefix, map_location=map_location)
        try:
            check_strict(strict)
        except TypeError as error:
            raise TypeError(f'init_cfg {error}') from None
        self.strict, self.convert, self.allowed_globals = strict, convert, allowed_globals

    def __call__(self, module):
        if not _is_ours(module) and (self.strict, self.convert, self.allowed_globals) == \
                (None, 'auto', None):
            # another library's module (an mmdet/mmseg ResNet, a head): mmengine's semantics
            # (no key conversion; shape mismatches logged, not raised), still read through our
            # safe, hash-checked scheme loaders (mmengine's log lines lose URL credentials)
            with _redacted_log():
                return super().__call__(module)
        self.report = load_checkpoint(module, self.checkpoint, prefix=self.prefix,
                                      strict=self.strict, convert=self.convert,
                                      map_location=self.map_location,
                                      allowed_globals=self.allowed_globals)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self):
        return f'{type(self).__name__}: load from {redact_url(str(self.checkpoint))}'


class _RedactFilter(logging.Filter):
    def filter(self, record):
        if isinstance(record.msg, str) and '@' in record.msg:
            record.msg = redact_url(record.msg)
        return True


@contextlib.contextmanager
def _redacted_log():
    """Within the block, the current MMLogger's messages have URL credentials redacted."""
    from mmengine.logging import MMLogger
    logger, redact = MMLogger.get_current_instance(), _RedactFilter()
    logger.addFilter(redact)
    try:
        yield
    finally:
        logger.removeFilter(redact)


def _is_ours(module: nn.Module) -> bool:
    return type(_unwrap(module)).__module__.split('.')[0] == 'mmbackbones'


def register_initializer() -> None:
    WEIGHT_INITIALIZERS.register_module(name='Pretrained', module=PretrainedInit, force=True)


def register() -> None:
    """Install safe loading into mmengine: our ``CheckpointLoader`` schemes and ``Pretrained``
    initializer. The one function that does; ``mmbackbones.checkpoint`` calls it once, on import
    (calling it again changes nothing)."""
    register_schemes()
    register_initializer()
    print_log('mmbackbones: safe checkpoint loading registered with mmengine', logger='current',
              level=10)
