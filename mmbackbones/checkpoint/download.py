"""Downloading checkpoints into the cache, with a hash check and a progress bar.

The cache is ``$MMBACKBONES_HOME/checkpoints`` (default ``~/.cache/mmbackbones/checkpoints``). A
file is downloaded to ``<name>.part`` and hashed while it arrives; it takes its final name only
when its sha256 matches (the full hash when known, else the ``-<hex>`` prefix of OpenMMLab and
torchvision file names), otherwise it is removed. Without network access the error names the URL
and the exact path to put the file at.
"""
import hashlib
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

__all__ = ['get_cache_dir', 'cache_path_for', 'download', 'sha256sum', 'DownloadError',
           'ChecksumError', 'hash_prefix_from_url']

ENV_HOME = 'MMBACKBONES_HOME'
_CHUNK = 1 << 20
# OpenMMLab (`..._20210831-ea4938fc.pth`) and torchvision (`resnet50-0676ba61.pth`) file names
# end with the first hex digits of the file's sha256
_HASH_SUFFIX = re.compile(r'-([0-9a-f]{8,64})\.[A-Za-z]+$')


class DownloadError(RuntimeError):
    """A checkpoint could not be fetched (no network, HTTP error, ...)."""


class ChecksumError(RuntimeError):
    """A file's sha256 is not the one expected."""


def get_cache_dir() -> str:
    """``$MMBACKBONES_HOME/checkpoints`` (default ``~/.cache/mmbackbones/checkpoints``)."""
    home = os.environ.get(ENV_HOME) or os.path.join('~', '.cache', 'mmbackbones')
    return os.path.join(os.path.abspath(os.path.expanduser(home)), 'checkpoints')


def cache_path_for(url: str, filename: Optional[str] = None) -> str:
    """Where ``url`` is cached. Hugging Face URLs (all named ``model.safetensors``) get the repo in
    the name: ``timm--resnet50.a1_in1k--model.safetensors``."""
    if filename:
        return os.path.join(get_cache_dir(), filename)
    parsed = urllib.parse.urlparse(url)
    parts = [p for p in parsed.path.split('/') if p]
    name = parts[-1] if parts else 'checkpoint'
    if parsed.netloc.endswith('huggingface.co') and 'resolve' in parts:
        repo = parts[:parts.index('resolve')]
        name = '--'.join(repo + [name])
    return os.path.join(get_cache_dir(), name)


def hash_prefix_from_url(url: str) -> Optional[str]:
    match = _HASH_SUFFIX.search(urllib.parse.urlparse(url).path)
    return match.group(1) if match else None


def sha256sum(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(actual: str, sha256: Optional[str], prefix: Optional[str]) -> Optional[str]:
    """None when fine, else what was expected."""
    if sha256 and actual != sha256.lower():
        return sha256.lower()
    if not sha256 and prefix and not actual.startswith(prefix.lower()):
        return prefix.lower() + '...'
    return None


def _progress(total: Optional[int], label: str, enabled: bool):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                               TransferSpeedColumn)
    progress = Progress('[progress.description]{task.description}', BarColumn(),
                        DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=False)
    task = progress.add_task(label, total=total)
    return progress, task


def download(url: str,
             sha256: Optional[str] = None,
             filename: Optional[str] = None,
             progress: Optional[bool] = None,
             check_url_hash: bool = True,
             timeout: float = 30.0) -> str:
    """Return the local path of ``url``, downloading it into the cache when not there yet.

    Args:
        url: ``http(s)://`` or ``file://``.
        sha256: the full expected hash, if known. Otherwise the ``-<hex>`` suffix of the file name
            (OpenMMLab/torchvision convention) is checked when ``check_url_hash``.
        filename: name in the cache (default: from the URL).
        progress: show a progress bar (default: when stderr is a terminal).
    Raises:
        DownloadError (the message names the URL and where to place the file by hand),
        ChecksumError (the bad file is removed).
    """
    dst = cache_path_for(url, filename)
    prefix = hash_prefix_from_url(url) if check_url_hash else None
    if os.path.isfile(dst):
        if sha256:  # cheap next to loading the file, and catches a truncated manual copy
            actual = sha256sum(dst)
            if actual != sha256.lower():
                raise ChecksumError(f'{dst} (cached copy of {url}) has sha256 {actual}, expected '
                                    f'{sha256.lower()}; delete it to download again')
        return dst
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    part = f'{dst}.{os.getpid()}.part'
    if progress is None:
        progress = sys.stderr.isatty()
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(url, headers={'User-Agent': 'mmbackbones'})
        with urllib.request.urlopen(request, timeout=timeout) as response, \
                open(part, 'wb') as out:
            total = response.headers.get('Content-Length')
            total = int(total) if total and total.isdigit() else None
            bar = _progress(total, os.path.basename(dst), progress)
            if bar is not None:
                bar[0].start()
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b''):
                    out.write(chunk)
                    digest.update(chunk)
                    if bar is not None:
                        bar[0].update(bar[1], advance=len(chunk))
            finally:
                if bar is not None:
                    bar[0].stop()
    except urllib.error.HTTPError as e:
        _remove(part)
        raise DownloadError(f'could not download {url}: the server answered {e.code} '
                            f'{e.reason}. If you have the file, place it at {dst}') from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        _remove(part)
        reason = getattr(e, 'reason', None) or e
        raise DownloadError(
            f'could not download {url} ({reason}). Without network access, fetch that file '
            f'elsewhere and place it at {dst}') from None
    except BaseException:
        _remove(part)
        raise
    actual = digest.hexdigest()
    expected = _check_hash(actual, sha256, prefix)
    if expected is not None:
        _remove(part)
        raise ChecksumError(f'downloaded {url} has sha256 {actual}, expected {expected}; the '
                            f'file was removed (a truncated or tampered download)')
    shutil.move(part, dst)
    return dst


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
