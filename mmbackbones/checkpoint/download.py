"""Downloading checkpoints into the cache: nothing unchecked ever enters it or leaves it.

The cache is ``$MMBACKBONES_HOME/checkpoints`` (default ``~/.cache/mmbackbones/checkpoints``), keyed
by the whole URL: ``<host>/<12 hex digits of sha256(url)>/<file name>`` (the file keeps its
upstream name, made safe for a file system), so two URLs ending in the same name never share a
file. What is checked, and when:

* **download**: bytes go to a private temporary file next to the destination (one per download,
  so threads and processes never share one) while a lock (a thread lock plus ``flock`` on
  ``.locks/<key>``) makes concurrent downloads of one URL wait for the first. The received length
  must equal ``Content-Length`` and the sha256 must match (the full hash when known, else the
  ``-<hex>`` prefix of OpenMMLab/torchvision file names); only then is the file renamed into place
  and a *verified marker* (size, mtime, inode, sha256) recorded under ``.verified/``.
* **cache hit**: a file whose marker still matches its size/mtime/inode is used as is; any other
  file (copied there by hand, replaced, touched) is hashed and checked against the same expected
  hash before use, and refused with :class:`ChecksumError` naming the file when it does not match.
* **other caches first**: before downloading, the file torch hub / mmengine would have used
  (``$TORCH_HOME/hub/checkpoints/<name>``) is used when present and its hash checks out, so a
  model that loaded before ``import mmbackbones`` loads the same file after it.
* Without network access the error names the URL and the exact path to put the file at.
"""
import contextlib
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

__all__ = ['get_cache_dir', 'cache_path_for', 'download', 'sha256sum', 'DownloadError',
           'ChecksumError', 'hash_prefix_from_url', 'find_in_other_caches']

ENV_HOME = 'MMBACKBONES_HOME'
_CHUNK = 1 << 20
# OpenMMLab (`..._20210831-ea4938fc.pth`) and torchvision (`resnet50-0676ba61.pth`) file names
# end with the first hex digits of the file's sha256
_HASH_SUFFIX = re.compile(r'-([0-9a-f]{8,64})\.[A-Za-z]+$')
_UNSAFE_CHARS = re.compile(r'[^A-Za-z0-9._+=-]')
_THREAD_LOCKS = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class DownloadError(RuntimeError):
    """A checkpoint could not be fetched (no network, HTTP error, short read, bad cache dir)."""


class ChecksumError(RuntimeError):
    """A file's sha256 is not the one expected."""


def get_cache_dir() -> str:
    """``$MMBACKBONES_HOME/checkpoints`` (default ``~/.cache/mmbackbones/checkpoints``)."""
    home = os.environ.get(ENV_HOME) or os.path.join('~', '.cache', 'mmbackbones')
    return os.path.join(os.path.abspath(os.path.expanduser(home)), 'checkpoints')


def _safe_component(text: str, default: str) -> str:
    """One path component: no separators, no ``.``/``..``, no odd characters, bounded length."""
    text = _UNSAFE_CHARS.sub('_', urllib.parse.unquote(text)).lstrip('.')[-150:]
    return text or default


def _readable_name(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    parts = [p for p in parsed.path.split('/') if p not in ('', '.', '..')]
    name = parts[-1] if parts else 'checkpoint'
    if parsed.netloc.endswith('huggingface.co') and 'resolve' in parts:
        # Hugging Face files are all called model.safetensors: put the repo in the name
        name = '--'.join(parts[:parts.index('resolve')] + [name])
    return _safe_component(name, 'checkpoint')


def cache_path_for(url: str, filename: Optional[str] = None) -> str:
    """Where ``url`` is cached: ``<cache>/<host>/<url digest>/<name>`` (see the module doc).

    ``filename`` overrides the readable name (the URL still decides the folder)."""
    parsed = urllib.parse.urlparse(url)
    host = _safe_component(parsed.netloc, 'local')
    key = hashlib.sha256(url.encode('utf-8', 'surrogatepass')).hexdigest()[:12]
    name = _safe_component(os.path.basename(filename), 'checkpoint') if filename else \
        _readable_name(url)
    return os.path.join(get_cache_dir(), host, key, name)


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


# ----- verified markers -------------------------------------------------------------------------
def _marker_path(path: str) -> str:
    key = hashlib.sha256(os.path.abspath(path).encode('utf-8', 'surrogatepass')).hexdigest()[:24]
    return os.path.join(get_cache_dir(), '.verified', key + '.json')


def _stat_key(path: str) -> list:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _write_marker(path: str, actual: str) -> None:
    marker = _marker_path(path)
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with _atomic_text(marker) as f:
            json.dump({'path': os.path.abspath(path), 'stat': _stat_key(path),
                       'sha256': actual}, f)
    except OSError:  # a read-only cache: the file is then hashed on every use
        pass


def _read_marker(path: str) -> dict:
    try:
        with open(_marker_path(path)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) and marker.get('path') == \
        os.path.abspath(path) else {}


@contextlib.contextmanager
def _atomic_text(path: str):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.tmp-')
    try:
        with os.fdopen(fd, 'w') as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def verify_file(path: str, url: str, sha256: Optional[str] = None,
                prefix: Optional[str] = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the expected hash (marker-accelerated)."""
    marker = _read_marker(path)
    if marker.get('stat') == _stat_key(path) and marker.get('sha256'):
        actual = marker['sha256']  # verified before and unchanged since
    else:
        actual = sha256sum(path)
        if not sha256 and not prefix:  # nothing published: compare with what was downloaded
            sha256 = marker.get('sha256')
    expected = _check_hash(actual, sha256, prefix)
    if expected is not None:
        raise ChecksumError(f'{path} (the cached copy of {url}) has sha256 {actual}, expected '
                            f'{expected}: it is truncated, corrupt or another file. Delete it '
                            f'(or put the right file there) and load again')
    _write_marker(path, actual)


# ----- other caches -------------------------------------------------------------------------------
def find_in_other_caches(url: str, sha256: Optional[str] = None,
                         prefix: Optional[str] = None) -> Optional[str]:
    """The file torch hub (and so mmengine's ``load_url``) caches ``url`` as, when it is there and
    its hash checks out (when one is known); else None."""
    try:
        import torch.hub
        hub = os.path.join(torch.hub.get_dir(), 'checkpoints')
    except Exception:  # noqa: BLE001 - no torch hub dir: nothing to find
        return None
    name = os.path.basename(urllib.parse.urlparse(url).path)
    candidate = os.path.join(hub, name) if name not in ('', '.', '..') else None
    if candidate is None or not os.path.isfile(candidate):
        return None
    try:
        verify_file(candidate, url, sha256, prefix)
    except ChecksumError as error:
        from mmengine.logging import print_log
        print_log(f'not using {candidate}: {error}', logger='current', level=30)
        return None
    return candidate


# ----- locks --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _download_lock(dst: str):
    """Held while one URL downloads: a lock per path for threads, ``flock`` for processes."""
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.setdefault(dst, threading.Lock())
    with lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: threads only
            yield
            return
        locks = os.path.join(get_cache_dir(), '.locks')
        os.makedirs(locks, exist_ok=True)
        key = hashlib.sha256(dst.encode('utf-8', 'surrogatepass')).hexdigest()[:24]
        with open(os.path.join(locks, key + '.lock'), 'a') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


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


def _make_dirs(dst: str, url: str) -> None:
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.makedirs(os.path.join(get_cache_dir(), '.locks'), exist_ok=True)
    except OSError as e:
        raise DownloadError(
            f'cannot use the checkpoint cache {get_cache_dir()} for {url}: {e.strerror or e}. '
            f'Set ${ENV_HOME} to a writable folder (now: '
            f'{os.environ.get(ENV_HOME, "unset")!r})') from None


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
        ChecksumError (a bad download is removed; a bad cached file is named).
    """
    dst = cache_path_for(url, filename)
    prefix = hash_prefix_from_url(url) if check_url_hash else None
    if os.path.isfile(dst):
        verify_file(dst, url, sha256, prefix)
        return dst
    found = find_in_other_caches(url, sha256, prefix)
    if found is not None:
        return found
    _make_dirs(dst, url)
    with _download_lock(dst):
        if os.path.isfile(dst):  # another thread or process finished it meanwhile
            verify_file(dst, url, sha256, prefix)
            return dst
        _fetch(url, dst, sha256, prefix, sys.stderr.isatty() if progress is None else progress,
               timeout)
    return dst


def _fetch(url: str, dst: str, sha256: Optional[str], prefix: Optional[str], progress: bool,
           timeout: float) -> None:
    fd, part = tempfile.mkstemp(dir=os.path.dirname(dst), prefix=f'.{os.path.basename(dst)}.',
                                suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as out:
            actual = _stream(url, out, os.path.basename(dst), progress, timeout, dst)
        expected = _check_hash(actual, sha256, prefix)
        if expected is not None:
            raise ChecksumError(f'downloaded {url} has sha256 {actual}, expected {expected}; '
                                f'the file was removed (a truncated or tampered download)')
        os.replace(part, dst)
    except BaseException:
        _remove(part)
        raise
    _write_marker(dst, actual)


def _stream(url, out, label, progress, timeout, dst) -> str:
    """Copy ``url`` into the open file ``out``; the sha256 of what arrived. Checks the length."""
    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={'User-Agent': 'mmbackbones'})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.headers.get('Content-Length')
            total = int(total) if total and total.isdigit() else None
            bar = _progress(total, label, progress)
            if bar is not None:
                bar[0].start()
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b''):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar[0].update(bar[1], advance=len(chunk))
            finally:
                if bar is not None:
                    bar[0].stop()
    except urllib.error.HTTPError as e:
        raise DownloadError(f'could not download {url}: the server answered {e.code} '
                            f'{e.reason}. If you have the file, place it at {dst}') from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, 'reason', None) or repr(e)
        raise DownloadError(
            f'could not download {url} ({reason}). Without network access, fetch that file '
            f'elsewhere and place it at {dst}') from None
    if total is not None and received != total:
        raise DownloadError(f'could not download {url}: the connection ended after {received} '
                            f'of {total} bytes; nothing was cached. Try again, or place the '
                            f'file at {dst}')
    return digest.hexdigest()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
