"""Integrity of downloads and the cache (issue #14, items 2-5, 11, 12), against HTTP servers on
127.0.0.1 with bounded timeouts."""
import hashlib
import importlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

from mmbackbones.checkpoint import ChecksumError, DownloadError, download
from mmbackbones.checkpoint.download import cache_path_for, get_cache_dir
from tests.local_http import LocalHTTPServer

download_mod = importlib.import_module('mmbackbones.checkpoint.download')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 10


class _Server(LocalHTTPServer):
    """Serves ``files`` (name -> bytes) on 127.0.0.1; ``short`` names send half their
    Content-Length; ``delay`` seconds between chunks make downloads overlap."""

    def __init__(self, files, short=(), delay=0.0):
        self.files, self.short, self.delay, self.hits = files, set(short), delay, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip('/')
                server.hits.append(name)
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                if name in server.short:
                    data = data[:len(data) // 2]
                for i in range(0, len(data), 4096):
                    self.wfile.write(data[i:i + 4096])
                    if server.delay:
                        time.sleep(server.delay)
                self.close_connection = True

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def serve():
    servers = []

    def make(files, **kwargs):
        servers.append(_Server(files, **kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _blob(seed=0, size=50_000):
    return torch.randn(size // 4, generator=torch.Generator().manual_seed(seed)).numpy().tobytes()


def _named(data, stem='r18_20210831'):
    return f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'


def _files(cache_dir):
    out = []
    for root, dirs, files in os.walk(cache_dir):
        dirs[:] = [d for d in dirs if d not in ('.locks', '.verified')]
        out += [os.path.join(root, f) for f in files]
    return sorted(out)


def _closed_port_url(name):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/{name}'


# ----- 2. truncated downloads never enter the cache -----------------------------------------------
@pytest.mark.parametrize('with_hash', [True, False])
def test_short_download_is_refused_and_not_cached(serve, cache_dir, with_hash):
    data = _blob()
    name = _named(data) if with_hash else 'plain.pth'
    server = serve({name: data}, short=[name])
    with pytest.raises(DownloadError, match=f'ended after {len(data) // 2} of {len(data)} bytes'):
        download(server.url(name), progress=False, timeout=TIMEOUT)
    assert _files(cache_dir) == []
    server.short.clear()  # the next attempt gets the whole file
    path = download(server.url(name), progress=False, timeout=TIMEOUT)
    assert open(path, 'rb').read() == data


# ----- 3. cache hits are checked -----------------------------------------------------------------
def test_bad_file_placed_in_the_cache_is_caught(serve, cache_dir):
    data = _blob()
    name = _named(data)
    url = _closed_port_url(name)  # offline: the file is placed by hand where we are told
    with pytest.raises(DownloadError, match='place it at') as info:
        download(url, progress=False, timeout=TIMEOUT)
    where = cache_path_for(url)
    assert where in str(info.value)
    os.makedirs(os.path.dirname(where), exist_ok=True)
    with open(where, 'wb') as f:
        f.write(data[:1000])  # a truncated copy
    with pytest.raises(ChecksumError) as info:
        download(url, progress=False, timeout=TIMEOUT)
    assert where in str(info.value) and hashlib.sha256(data).hexdigest()[:8] in str(info.value)
    with open(where, 'wb') as f:
        f.write(data)  # the right file
    assert download(url, progress=False, timeout=TIMEOUT) == where


def test_replaced_cache_file_is_caught_even_without_a_published_hash(serve, cache_dir):
    data = _blob()
    server = serve({'nohash.pth': data})
    url = server.url('nohash.pth')
    path = download(url, progress=False, timeout=TIMEOUT)
    with open(path, 'wb') as f:  # replaced afterwards: the recorded hash catches it
        f.write(_blob(seed=1))
    with pytest.raises(ChecksumError, match='nohash.pth'):
        download(url, progress=False, timeout=TIMEOUT)
    assert server.hits == ['nohash.pth']


def test_verified_marker_skips_rehashing_an_unchanged_file(serve, cache_dir, monkeypatch):
    data = _blob()
    name = _named(data)
    server = serve({name: data})
    path = download(server.url(name), progress=False, timeout=TIMEOUT)
    calls = []
    real = download_mod.sha256sum
    monkeypatch.setattr(download_mod, 'sha256sum', lambda p: calls.append(p) or real(p))
    for _ in range(3):
        assert download(server.url(name), progress=False, timeout=TIMEOUT) == path
    assert calls == []  # unchanged since verified
    os.utime(path, ns=(1, 1))  # touched: hashed again, then trusted again
    download(server.url(name), progress=False, timeout=TIMEOUT)
    download(server.url(name), progress=False, timeout=TIMEOUT)
    assert calls == [path]


# ----- 4. cache keys -----------------------------------------------------------------------------
def test_same_file_name_on_two_urls_gets_two_cache_files(serve, cache_dir):
    a, b = _blob(0), _blob(1)
    one, two = serve({'one/model.pth': a}), serve({'two/model.pth': b})
    path_a = download(one.url('one/model.pth'), progress=False, timeout=TIMEOUT)
    path_b = download(two.url('two/model.pth'), progress=False, timeout=TIMEOUT)
    assert path_a != path_b
    assert os.path.basename(path_a) == os.path.basename(path_b) == 'model.pth'
    assert open(path_a, 'rb').read() == a and open(path_b, 'rb').read() == b
    assert cache_path_for('http://h/one/model.pth') != cache_path_for('http://h/two/model.pth')


@pytest.mark.parametrize('url', [
    'http://h/x/..', 'http://h/x/.', 'http://h/', 'http://h', 'http://h/a/%2e%2e',
    'http://h/a/..%2F..%2Fetc%2Fpasswd', 'http://h/a b?c=d#e', 'http://h/%00.pth',
    'http://../../x.pth', 'http://h/' + 'x' * 500 + '.pth', 'http://h/ü/модель.pth',
    'file:///tmp/a/../../etc/passwd',
])
def test_odd_urls_stay_inside_the_cache(cache_dir, url):
    path = cache_path_for(url)
    root = get_cache_dir()
    assert os.path.commonpath([root, os.path.realpath(path)]) == root
    name = os.path.basename(path)
    assert name and name not in ('.', '..') and not name.startswith('.')
    assert len(name) <= 150 and '/' not in name and '\0' not in name
    assert os.path.relpath(path, root).count(os.sep) == 2  # <host>/<key>/<name>


# ----- 5. concurrent downloads -------------------------------------------------------------------
def test_threads_share_one_download(serve, cache_dir):
    data = _blob(size=200_000)
    name = _named(data)
    server = serve({name: data}, delay=0.002)
    results, errors = [], []

    def worker():
        try:
            results.append(download(server.url(name), progress=False, timeout=TIMEOUT))
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 3)
    assert errors == []
    assert len(results) == 6 and len(set(results)) == 1
    assert server.hits == [name]  # one request; the others waited for it
    assert open(results[0], 'rb').read() == data
    assert _files(cache_dir) == [results[0]]


def test_processes_share_one_download(serve, cache_dir):
    data = _blob(size=200_000)
    name = _named(data)
    server = serve({name: data}, delay=0.002)
    code = ('import sys; from mmbackbones.checkpoint.download import download; '
            f'print(download(sys.argv[1], progress=False, timeout={TIMEOUT}))')
    env = dict(os.environ, PYTHONPATH=REPO)
    procs = [subprocess.Popen([sys.executable, '-c', code, server.url(name)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert paths == {cache_path_for(server.url(name))}
    assert server.hits == [name]
    assert _files(cache_dir) == sorted(paths)


# ----- 11. cache folder errors -------------------------------------------------------------------
@pytest.mark.parametrize('kind', ['file', 'under_a_file'])
def test_unusable_cache_folder_names_the_variable_and_url(tmp_path, monkeypatch, kind):
    blocker = tmp_path / 'home_is_a_file'
    blocker.write_text('x')
    home = blocker if kind == 'file' else blocker / 'sub'
    monkeypatch.setenv('MMBACKBONES_HOME', str(home))
    url = _closed_port_url('r.pth')
    with pytest.raises(DownloadError) as info:
        download(url, progress=False, timeout=TIMEOUT)
    message = str(info.value)
    assert 'MMBACKBONES_HOME' in message and url in message and str(home) in message


# ----- 12. the caches users already have ---------------------------------------------------------
def test_file_in_torch_hub_cache_is_used_offline(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    hub = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    hub.mkdir(parents=True)
    data = _blob()
    name = _named(data, 'resnet50')
    (hub / name).write_bytes(data)
    url = _closed_port_url(name)
    assert download(url, progress=False, timeout=TIMEOUT) == str(hub / name)
    assert _files(cache_dir) == []  # nothing copied into our cache
    # a hub file whose hash does not match its name is not used
    bad_name = f'resnet50-{"0" * 8}.pth'
    (hub / bad_name).write_bytes(data)
    with pytest.raises(DownloadError):
        download(_closed_port_url(bad_name), progress=False, timeout=TIMEOUT)
