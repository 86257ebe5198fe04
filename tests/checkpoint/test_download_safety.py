"""Downloads keep secrets and never cache what they cannot read (issue #24, item 3): credentials
in URLs, redirects to other hosts and schemes, Content-Encoding, unreadable downloads. Servers
run on 127.0.0.1 with bounded timeouts."""
import base64
import gzip
import http.server
import io
import os
import socket
import zlib

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint import (CorruptCheckpointError, DownloadError, download,
                                    load_checkpoint)
from mmbackbones.checkpoint.download import cache_path_for, redact_url
from tests.local_http import LocalHTTPServer

TIMEOUT = 10
SECRET = 's3cr3t-Pa55'


class _Server(LocalHTTPServer):
    """``routes``: path -> ``(status, headers, body)``; records each request's path and
    ``Authorization`` header."""

    def __init__(self, routes):
        self.routes, self.requests = routes, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get('Authorization')))
                status, headers, body = server.routes.get(self.path, (404, {}, b''))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    @property
    def port(self):
        return self.httpd.server_address[1]


@pytest.fixture
def serve():
    servers = []

    def make(routes):
        servers.append(_Server(routes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _model():
    return build_backbone(dict(type='ResNet', depth=18, base_channels=8, stem_channels=8))


def _checkpoint_bytes(model):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def _cached_files(cache_dir):
    out = []
    for root, dirs, files in os.walk(cache_dir):
        dirs[:] = [d for d in dirs if d not in ('.locks', '.verified')]
        out += [os.path.join(root, f) for f in files]
    return out


def _basic(user, password):
    return 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()


# ----- credentials --------------------------------------------------------------------------------
def test_credentials_are_sent_but_never_shown_or_stored(serve, cache_dir, mm_log):
    model = _model()
    server = serve({'/r.pth': (200, {}, _checkpoint_bytes(model))})
    url = f'http://alice:{SECRET}@127.0.0.1:{server.port}/r.pth'
    report = load_checkpoint(_model(), url)
    assert server.requests == [('/r.pth', _basic('alice', SECRET))]
    path = cache_path_for(url)
    assert os.path.isfile(path) and SECRET not in path and 'alice' not in path
    assert path == cache_path_for(f'http://127.0.0.1:{server.port}/r.pth')
    for root, dirs, files in os.walk(cache_dir):
        assert not any(SECRET in name for name in dirs + files)
    assert SECRET not in report.message and SECRET not in mm_log.text
    assert '***@127.0.0.1' in report.message
    # an error echoes the URL without them
    server.routes.clear()
    with pytest.raises(DownloadError) as info:
        download(f'http://alice:{SECRET}@127.0.0.1:{server.port}/gone.pth', progress=False,
                 timeout=TIMEOUT)
    assert '404' in str(info.value) and SECRET not in str(info.value)
    assert 'alice' not in str(info.value)


def test_redact_url():
    assert redact_url('https://u:p@host/a.pth') == 'https://***@host/a.pth'
    assert redact_url('see http://tok@h:1/x and https://a:b@c/d') == \
        'see http://***@h:1/x and https://***@c/d'
    assert redact_url('https://host/a@b.pth') == 'https://host/a@b.pth'


def test_credentials_do_not_follow_a_redirect_to_another_host(serve, cache_dir):
    data = _checkpoint_bytes(_model())
    other = serve({'/r.pth': (200, {}, data)})
    # 'localhost' is another host name than 127.0.0.1 (and another port)
    origin = serve({'/r.pth': (302, {'Location': f'http://localhost:{other.port}/r.pth'}, b''),
                    '/same.pth': (302, {'Location': '/r2.pth'}, b''),
                    '/r2.pth': (200, {}, data)})
    path = download(f'http://bob:{SECRET}@127.0.0.1:{origin.port}/r.pth', progress=False,
                    timeout=TIMEOUT)
    assert open(path, 'rb').read() == data
    assert origin.requests == [('/r.pth', _basic('bob', SECRET))]
    assert other.requests == [('/r.pth', None)]
    # a redirect on the same host keeps them
    download(f'http://bob:{SECRET}@127.0.0.1:{origin.port}/same.pth', progress=False,
             timeout=TIMEOUT)
    assert origin.requests[1:] == [('/same.pth', _basic('bob', SECRET)),
                                   ('/r2.pth', _basic('bob', SECRET))]


@pytest.mark.parametrize('old, new, keeps', [
    ('http://h/a', 'http://h:80/b', True), ('http://h/a', 'https://h/b', True),
    ('https://h/a', 'http://h/b', False), ('http://h:8080/a', 'https://h:8080/b', False),
    ('https://h/a', 'https://g/b', False), ('https://h/a', 'https://h:8443/b', False),
    ('https://u:p@H/a', 'https://h:443/b', True)])
def test_which_redirects_keep_the_credentials(old, new, keeps):
    from mmbackbones.checkpoint.download import _origin, _same_origin
    assert _same_origin(_origin(old), _origin(new)) is keeps


@pytest.mark.parametrize('scheme', ['ftp', 'file'])
def test_only_http_redirects_are_followed(serve, cache_dir, scheme):
    with socket.socket() as listener:  # where an ftp:// redirect would connect
        listener.bind(('127.0.0.1', 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        target = f'ftp://127.0.0.1:{port}/x.pth' if scheme == 'ftp' else 'file:///etc/hostname'
        server = serve({'/r.pth': (302, {'Location': target}, b'')})
        with pytest.raises(DownloadError) as info:
            download(f'http://127.0.0.1:{server.port}/r.pth', progress=False, timeout=TIMEOUT)
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing connected to the ftp:// target
    message = str(info.value)
    if scheme == 'ftp':
        assert 'only http(s) redirects' in message and 'ftp' in message
    assert _cached_files(cache_dir) == []


# ----- Content-Encoding ---------------------------------------------------------------------------
@pytest.mark.parametrize('encoding', ['gzip', 'deflate', 'deflate-raw'])
def test_encoded_responses_are_decoded_before_caching(serve, cache_dir, encoding):
    model = _model()
    data = _checkpoint_bytes(model)
    if encoding == 'gzip':
        body = gzip.compress(data)
    elif encoding == 'deflate':
        body = zlib.compress(data)
    else:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = packer.compress(data) + packer.flush()
    server = serve({'/r.pth': (200, {'Content-Encoding': encoding.split('-')[0]}, body)})
    url = f'http://127.0.0.1:{server.port}/r.pth'
    path = download(url, progress=False, timeout=TIMEOUT)
    assert open(path, 'rb').read() == data
    target = _model()
    load_checkpoint(target, url)
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(),
                                                  model.state_dict().values()))


def test_unknown_encoding_is_refused_and_nothing_cached(serve, cache_dir):
    server = serve({'/r.pth': (200, {'Content-Encoding': 'br'}, b'\x0b\x02\x80hello\x03')})
    with pytest.raises(DownloadError, match="Content-Encoding 'br'"):
        download(f'http://127.0.0.1:{server.port}/r.pth', progress=False, timeout=TIMEOUT)
    assert _cached_files(cache_dir) == []


def test_cut_gzip_body_is_refused(serve, cache_dir):
    body = gzip.compress(_checkpoint_bytes(_model()))[:-40]
    server = serve({'/r.pth': (200, {'Content-Encoding': 'gzip'}, body)})
    with pytest.raises(DownloadError, match='ends early'):
        download(f'http://127.0.0.1:{server.port}/r.pth', progress=False, timeout=TIMEOUT)
    assert _cached_files(cache_dir) == []


# ----- a download that does not parse -------------------------------------------------------------
def test_html_page_served_as_a_checkpoint_is_not_kept(serve, cache_dir):
    page = b'<!DOCTYPE html><html><body>502 Bad Gateway</body></html>'
    server = serve({'/r.pth': (200, {'Content-Type': 'text/html'}, page)})
    url = f'http://127.0.0.1:{server.port}/r.pth'
    with pytest.raises(CorruptCheckpointError) as info:
        load_checkpoint(_model(), url)
    message = str(info.value)
    assert 'removed from the cache' in message and 'HTML' in message
    assert _cached_files(cache_dir) == []
    # the server recovers: the next load downloads again and works
    model = _model()
    server.routes['/r.pth'] = (200, {}, _checkpoint_bytes(model))
    target = _model()
    load_checkpoint(target, url)
    assert [p for p, _ in server.requests] == ['/r.pth', '/r.pth']
    assert torch.equal(target.conv1.weight, model.conv1.weight)


def test_foreign_module_through_mmengine_logs_no_credentials(serve, cache_dir, mm_log):
    from mmbackbones.checkpoint import PretrainedInit

    class Foreign(torch.nn.Module):  # another library's module: mmengine's own loading path
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)

    source, target = Foreign(), Foreign()
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    server = serve({'/f.pth': (200, {}, buffer.getvalue())})
    PretrainedInit(checkpoint=f'http://carol:{SECRET}@127.0.0.1:{server.port}/f.pth')(target)
    assert torch.equal(target.conv.weight, source.conv.weight)
    assert 'f.pth' in mm_log.text and SECRET not in mm_log.text


def test_mmengine_load_checkpoint_logs_no_credentials(serve, cache_dir, mm_log, capsys):
    from mmengine.runner.checkpoint import load_checkpoint as mmengine_load_checkpoint
    source, target = _model(), _model()
    server = serve({'/m.pth': (200, {}, _checkpoint_bytes(source))})
    mmengine_load_checkpoint(target, f'http://dan:{SECRET}@127.0.0.1:{server.port}/m.pth')
    assert torch.equal(target.conv1.weight, source.conv1.weight)
    printed = capsys.readouterr()  # mmengine's logger=None prints
    assert 'm.pth' in printed.out + mm_log.text
    assert SECRET not in printed.out + printed.err + mm_log.text
