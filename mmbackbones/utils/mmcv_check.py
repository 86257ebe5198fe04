"""Check the installed mmcv at import time without importing it.

Both ``mmcv`` (full, with compiled ops) and ``mmcv-lite`` (pure Python) install the module
``mmcv``; either works for mmbackbones. Reading the distribution metadata and locating the
module's files (``importlib.util.find_spec``, no import) keeps ``import mmbackbones`` light
(importing mmcv pulls in OpenCV). The files matter: installing one distribution over the other
and then uninstalling it removes the files they share, leaving metadata that still says
"installed" over an empty shell.
"""
import importlib.machinery
import importlib.util
import os
import warnings
from importlib import metadata

MMCV_MIN = '2.0.0'
MMCV_MAX = '2.2.0'  # exclusive, as mmdet 3.3 / mmseg 1.2 require

_INSTALL_HINT = ("Install a supported one with `pip install 'mmcv-lite>={min},<{max}'` "
                 "(pure Python) or the full `mmcv` in that range (needed by mmdet/mmseg).")


def _version_tuple(version: str) -> tuple:
    parts = []
    for piece in version.split('+')[0].split('.')[:3]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def installed_mmcv_distributions():
    """``[(distribution_name, version), ...]`` of every installed mmcv distribution."""
    found = []
    for dist in ('mmcv', 'mmcv-lite', 'mmcv-full'):
        try:
            found.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            continue
    return found


def installed_mmcv():
    """Return ``(distribution_name, version)`` of the installed mmcv, or ``None``."""
    found = installed_mmcv_distributions()
    return found[0] if found else None


def mmcv_module_problem(search_path=None) -> str:
    """Why the module ``mmcv`` cannot be imported although its metadata says installed ('' when
    its files are there: ``mmcv/__init__.py`` and ``mmcv/cnn/``). ``search_path``: look only
    in these folders (default: where ``import mmcv`` looks)."""
    if search_path is None:
        spec = importlib.util.find_spec('mmcv')
    else:
        spec = importlib.machinery.PathFinder.find_spec('mmcv', list(search_path))
    if spec is None:
        return 'the module mmcv is missing'
    if spec.origin is None or not os.path.isfile(spec.origin):
        return 'the module mmcv has no __init__.py (an empty shell)'
    folder = os.path.dirname(spec.origin)
    if not os.path.isfile(os.path.join(folder, 'cnn', '__init__.py')):
        return f'mmcv.cnn is missing from {folder}'
    return ''


def check_mmcv_version() -> str:
    """Raise ``ImportError`` with one clear message if mmcv is missing or out of range."""
    found = installed_mmcv()
    hint = _INSTALL_HINT.format(min=MMCV_MIN, max=MMCV_MAX)
    if found is None:
        raise ImportError(f'mmbackbones needs mmcv >= {MMCV_MIN}, < {MMCV_MAX}, but no mmcv is '
                          f'installed. {hint}')
    dist, version = found
    problem = mmcv_module_problem()
    if problem:
        raise ImportError(f'mmbackbones needs mmcv, and {dist}=={version} is recorded as '
                          f'installed, but {problem}: another mmcv distribution sharing its '
                          f'files was probably uninstalled. Reinstall it with `pip install '
                          f'--force-reinstall --no-deps {dist}=={version}`.')
    dists = installed_mmcv_distributions()
    if len(dists) > 1:
        names = ' and '.join(f'{d}=={v}' for d, v in dists)
        warnings.warn(f'{names} are both installed; they share the module mmcv, so the one '
                      f'installed last overwrote the other\'s files and uninstalling either '
                      f'breaks mmcv. Keep one: mmdet/mmseg need the full mmcv (`pip uninstall '
                      f'mmcv-lite` then `pip install --force-reinstall --no-deps mmcv==...`).',
                      stacklevel=2)
    if not _version_tuple(MMCV_MIN) <= _version_tuple(version) < _version_tuple(MMCV_MAX):
        raise ImportError(f'mmbackbones needs mmcv >= {MMCV_MIN}, < {MMCV_MAX}, but {dist}=={version} '
                          f'is installed. {hint}')
    return version
