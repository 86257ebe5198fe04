"""Check the installed mmcv at import time without importing it.

Both ``mmcv`` (full, with compiled ops) and ``mmcv-lite`` (pure Python) install the module
``mmcv``; either works for mmbackbones. Reading the distribution metadata keeps
``import mmbackbones`` light (importing mmcv pulls in OpenCV).
"""
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


def installed_mmcv():
    """Return ``(distribution_name, version)`` of the installed mmcv, or ``None``."""
    for dist in ('mmcv', 'mmcv-lite', 'mmcv-full'):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_mmcv_version() -> str:
    """Raise ``ImportError`` with one clear message if mmcv is missing or out of range."""
    found = installed_mmcv()
    hint = _INSTALL_HINT.format(min=MMCV_MIN, max=MMCV_MAX)
    if found is None:
        raise ImportError(f'mmbackbones needs mmcv >= {MMCV_MIN}, < {MMCV_MAX}, but no mmcv is '
                          f'installed. {hint}')
    dist, version = found
    if not _version_tuple(MMCV_MIN) <= _version_tuple(version) < _version_tuple(MMCV_MAX):
        raise ImportError(f'mmbackbones needs mmcv >= {MMCV_MIN}, < {MMCV_MAX}, but {dist}=={version} '
                          f'is installed. {hint}')
    return version
