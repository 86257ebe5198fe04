"""Pretrained weights: safe loading, prefixes, format conversion, the model zoo.

Importing this package installs our loaders into mmengine (``CheckpointLoader`` schemes and the
``Pretrained`` initializer) by calling :func:`~.loading.register`, the one place that does, once
(a package body runs once). ``BaseBackbone.__init__`` imports this package, so every backbone,
built through a registry or used directly, loads ``init_cfg=dict(type='Pretrained', ...)`` this
way. This package is a library:
its command-line front end is ``mmbackbones convert`` / ``mmbackbones zoo`` in ``cli.py``.
"""
from .converters import convert_state_dict, detect_format
from .download import ChecksumError, DownloadError, download, get_cache_dir
from .io import CorruptCheckpointError, UnsafeCheckpointError, load_file, save_file
from .loading import (PretrainedInit, StateDictRead, load_checkpoint, read_checkpoint,
                      read_state_dict, register)
from .fit import StateDictFit, check_state_dict_fits
from .state import (CheckpointMismatchError, LoadReport, extract_state_dict, load_state_dict,
                    select_prefix)
from .zoo import format_zoo_table, list_zoo, resolve

register()

# what a user can fix (a bad file, a bad hash, no network, a checkpoint that does not fit):
# front ends report these as one line
CHECKPOINT_ERRORS = (CheckpointMismatchError, UnsafeCheckpointError, CorruptCheckpointError,
                     DownloadError, ChecksumError)

__all__ = ['load_checkpoint', 'read_checkpoint', 'read_state_dict', 'StateDictRead', 'load_file',
           'save_file', 'load_state_dict', 'extract_state_dict', 'select_prefix',
           'convert_state_dict', 'detect_format', 'list_zoo', 'resolve', 'format_zoo_table',
           'download', 'get_cache_dir', 'PretrainedInit', 'LoadReport', 'CheckpointMismatchError',
           'UnsafeCheckpointError', 'CorruptCheckpointError', 'DownloadError', 'ChecksumError',
           'CHECKPOINT_ERRORS', 'check_state_dict_fits', 'StateDictFit']
