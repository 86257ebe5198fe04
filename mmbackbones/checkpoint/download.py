"""Downloading checkpoints into the cache: nothing unchecked ever enters it or leaves it.

The cache is ``$MMBACKBONES_HOME/checkpoints`` (default ``~/.cache/mmbackbones/checkpoints``), keyed
by the whole URL less any credentials: ``<host>/<12 hex digits of sha256(url)>/<file name>``
(the file keeps its upstream name, made safe for a file system), so two URLs ending in the same
name never share a file. What is checked, and when:

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
* **credentials** in a URL (``https://user:password@host/...``) are sent as an ``Authorization``
  header to that host only (never to a redirect target on another host, scheme or port), and
  never appear in messages, logs or cache paths (:func:`redact_url`; the cache key is the URL
  without them). Only http(s) -> http(s) redirects are followed.
* **encodings**: ``Accept-Encoding: identity`` is asked for; a response that is encoded anyway
  (``Content-Encoding: gzip``/``deflate``) is decoded while it streams, so the cache holds the
  file itself; other encodings are refused.
* **unreadable downloads**: a cached download that does not parse as a checkpoint (an HTML error
  page served with status 200) and was not checked against a published hash is removed from the
  cache by :func:`load_downloaded`, whose error says so: the next load downloads it again.
"""
import base64
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
import zlib
from typing import Callable, Optional, Tuple

__all__ = ['get_cache_dir', 'cache_path_for', 'download', 'sha256sum', 'DownloadError',
           'ChecksumError', 'hash_prefix_from_url', 'find_in_other_caches', 'redact_url',
           'load_downloaded']

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


# ----- credentials --------------------------------------------------------------------------------
_USERINFO = re.compile(r'(?<=//)[^/?#@\s]*@')


def redact_url(url) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (also inside longer text)."""
    return _USERINFO.sub('***@', url) if isinstance(url, str) and '@' in url else url


def _split_credentials(url: str) -> Tuple[str, Optional[str]]:
    """``(url without user:password@, 'Basic ...' header or None)``."""
    parsed = urllib.parse.urlsplit(url)
    userinfo, at, hostport = parsed.netloc.rpartition('@')
    if not at:
        return url, None
    user, _, password = userinfo.partition(':')
    token = f'{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}'
    auth = 'Basic ' + base64.b64encode(token.encode('utf-8')).decode('ascii')
    return urllib.parse.urlunsplit(parsed._replace(netloc=hostport)), auth


def _origin(url: str) -> tuple:
    parsed = urllib.parse.urlsplit(url)
    hostport = parsed.netloc.rpartition('@')[2].lower()
    default = {'http': ':80', 'https': ':443'}.get(parsed.scheme.lower(), '')
    if default and hostport.endswith(default):
        hostport = hostport[:-len(default)]
    return parsed.scheme.lower(), hostport


def _same_origin(old: tuple, new: tuple) -> bool:
    """Credentials may follow a redirect to the same scheme, host and port, or from http to
    https on the same host with the default ports (an upgrade, as ``requests`` allows)."""
    return old == new or (old[0] == 'http' and new[0] == 'https' and old[1] == new[1] and
                          ':' not in old[1].rpartition(']')[2])


def _scrub(text: str, auth: Optional[str]) -> str:
    """``text`` without credentials: userinfo in URLs, and the decoded password itself."""
    text = redact_url(text)
    if auth:
        user, _, password = base64.b64decode(auth[6:]).decode('utf-8').partition(':')
        for secret in {password, urllib.parse.quote(password, safe='')} - {''}:
            text = text.replace(secret, '***')
    return text


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

    ``filename`` overrides the readable name (the URL still decides the folder). Credentials in
    the URL play no part: the same file with or without them has one place."""
    url = _split_credentials(url)[0]
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
        verify_file(candidate, redact_url(url), sha256, prefix)
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
    clean, auth = _split_credentials(url)
    shown = redact_url(url)
    dst = cache_path_for(clean, filename)
    prefix = hash_prefix_from_url(clean) if check_url_hash else None
    if os.path.isfile(dst):
        verify_file(dst, shown, sha256, prefix)
        return dst
    found = find_in_other_caches(clean, sha256, prefix)
    if found is not None:
        return found
    _make_dirs(dst, shown)
    with _download_lock(dst):
        if os.path.isfile(dst):  # another thread or process finished it meanwhile
            verify_file(dst, shown, sha256, prefix)
            return dst
        _fetch(clean, auth, dst, sha256, prefix,
               sys.stderr.isatty() if progress is None else progress, timeout)
    return dst


def _fetch(url: str, auth: Optional[str], dst: str, sha256: Optional[str],
           prefix: Optional[str], progress: bool, timeout: float) -> None:
    fd, part = tempfile.mkstemp(dir=os.path.dirname(dst), prefix=f'.{os.path.basename(dst)}.',
                                suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as out:
            actual = _stream(url, auth, out, os.path.basename(dst), progress, timeout, dst)
        expected = _check_hash(actual, sha256, prefix)
        if expected is not None:
            raise ChecksumError(f'downloaded {url} has sha256 {actual}, expected {expected}; '
                                f'the file was removed (a truncated or tampered download)')
        os.replace(part, dst)
    except BaseException:
        _remove(part)
        raise
    _write_marker(dst, actual)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows http(s) -> http(s) redirects only; the ``Authorization`` of a URL's credentials
    goes along only while the origin (scheme, host, port) stays the same (or is upgraded from
    http to https on the default ports)."""

    def __init__(self, auth: Optional[str], origin: tuple, dst: str):
        super().__init__()
        self.auth, self.origin, self.dst = auth, origin, dst

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ('http', 'https'):
            raise DownloadError(
                f'could not download {redact_url(req.full_url)}: the server redirected it to '
                f'{redact_url(newurl)[:200]}, a {scheme or "scheme-less"} URL; only http(s) '
                f'redirects are followed. If you have the file, place it at {self.dst}')
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header('Authorization')  # never carried by a plain header
            if self.auth and _same_origin(self.origin, _origin(newurl)):
                new.add_unredirected_header('Authorization', self.auth)
        return new


def _decoder(encoding: str, url: str):
    """``None`` for an unencoded body, else a ``decompressobj``-like object for it."""
    encoding = encoding.strip().lower()
    if encoding in ('', 'identity'):
        return None
    if encoding in ('gzip', 'x-gzip'):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == 'deflate':
        return _Deflate()
    raise DownloadError(f'could not download {url}: the server sent it with Content-Encoding '
                        f'{encoding!r}, which mmbackbones does not decode (only gzip and '
                        f'deflate); nothing was cached')


class _Deflate:
    """HTTP ``deflate``: zlib-wrapped as the RFC says, or raw deflate as some servers send."""

    def __init__(self):
        self.inner = None

    def decompress(self, data: bytes) -> bytes:
        if self.inner is None:
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self.inner = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return self.inner.decompress(data)

    def flush(self) -> bytes:
        return self.inner.flush() if self.inner is not None else b''

    @property
    def eof(self) -> bool:
        return self.inner is not None and self.inner.eof


def _stream(url, auth, out, label, progress, timeout, dst) -> str:
    """Copy ``url`` into the open file ``out`` (decoded when the server encoded it); the sha256
    of the file. Checks the length. No message holds the URL's credentials."""
    digest = hashlib.sha256()
    received = 0
    shown = redact_url(url)

    def write(data):
        if data:
            out.write(data)
            digest.update(data)

    try:
        request = urllib.request.Request(url, headers={'User-Agent': 'mmbackbones',
                                                       'Accept-Encoding': 'identity'})
        if auth:
            request.add_unredirected_header('Authorization', auth)
        opener = urllib.request.build_opener(_RedirectHandler(auth, _origin(url), dst))
        with opener.open(request, timeout=timeout) as response:
            total = response.headers.get('Content-Length')
            total = int(total) if total and total.isdigit() else None
            encoding = response.headers.get('Content-Encoding') or ''
            decoder = _decoder(encoding, shown)
            bar = _progress(total, label, progress)
            if bar is not None:
                bar[0].start()
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b''):
                    write(decoder.decompress(chunk) if decoder else chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar[0].update(bar[1], advance=len(chunk))
                if decoder is not None:
                    write(decoder.flush())
            finally:
                if bar is not None:
                    bar[0].stop()
    except urllib.error.HTTPError as e:
        raise DownloadError(_scrub(f'could not download {shown}: the server answered {e.code} '
                                   f'{e.reason}. If you have the file, place it at {dst}',
                                   auth)) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError,
            zlib.error) as e:
        reason = getattr(e, 'reason', None) or repr(e)
        raise DownloadError(_scrub(
            f'could not download {shown} ({reason}). Without network access, fetch that file '
            f'elsewhere and place it at {dst}', auth)) from None
    if total is not None and received != total:
        raise DownloadError(f'could not download {shown}: the connection ended after {received} '
                            f'of {total} bytes; nothing was cached. Try again, or place the '
                            f'file at {dst}')
    if decoder is not None and not decoder.eof:
        raise DownloadError(f'could not download {shown}: its {encoding}-encoded body ends '
                            f'early; nothing was cached. Try again, or place the file at {dst}')
    return digest.hexdigest()


def load_downloaded(path: str, url: str, load: Callable[[str], object],
                    sha256: Optional[str] = None):
    """``load(path)`` for a file :func:`download` returned. When it does not parse (a
    :class:`CorruptCheckpointError`: an HTML error page served with status 200, a cut file) and
    its bytes were not checked against a published hash, the file is removed from our cache and
    the error says so: the next load downloads it again (a file in another cache is left)."""
    from .io import CorruptCheckpointError
    try:
        return load(path)
    except CorruptCheckpointError as error:
        published = bool(sha256 or hash_prefix_from_url(_split_credentials(url)[0]))
        root = get_cache_dir()
        if published or os.path.commonpath([root, os.path.abspath(path)]) != root:
            raise
        looks_like = _looks_like_html(path)
        _remove(path)
        _remove(_marker_path(path))
        raise type(error)(f'{error}. It was downloaded from {redact_url(url)}{looks_like}; '
                          f'the file was removed from the cache, so the next load downloads it '
                          f'again') from None


def _looks_like_html(path: str) -> str:
    try:
        with open(path, 'rb') as f:
            head = f.read(512).lstrip().lower()
    except OSError:
        return ''
    if head.startswith((b'<!doctype html', b'<html', b'<head', b'<body', b'<?xml', b'<!--')):
        return (' and looks like an HTML/XML page (an error or login page the server sent with '
                'status 200), not a checkpoint')
    return ''


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
