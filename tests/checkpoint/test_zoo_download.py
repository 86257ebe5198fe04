"""The zoo file, name resolution, and the real download path against a local HTTP server."""
import hashlib
import http.server
import json
import os
import re
import socket

import pytest
import torch

from mmbackbones.checkpoint import ChecksumError, DownloadError, download, list_zoo, resolve
from mmbackbones.checkpoint import zoo as zoo_mod
from mmbackbones.checkpoint.download import cache_path_for, hash_prefix_from_url
from mmbackbones.cli import main as cli_main
from tests.local_http import LocalHTTPServer


# ----- zoo.json -------------------------------------------------------------------------------
def test_zoo_file_is_well_formed():
    entries = zoo_mod.load_zoo()
    assert entries
    names = [e['name'] for e in entries]
    assert len(names) == len(set(names))
    for e in entries:
        assert e['source'] in zoo_mod.ZOO_SOURCES, e['name']
        assert e['url'].startswith('https://'), e['name']
        assert e['sha256'] is None or re.fullmatch(r'[0-9a-f]{64}', e['sha256']), e['name']
        assert e['top1'] is None or 0 < e['top1'] < 100, e['name']
        assert e['arch'].get('type'), e['name']
        assert e['format'] in ('mmpretrain', 'torchvision', 'timm', 'mmdet', 'mmseg',
                               'official'), e['name']
        assert e['task'] in zoo_mod.TASKS and e['dataset'], e['name']


def test_zoo_has_the_published_mmcls_resnet50_checkpoints():
    r50 = resolve('mmcls://resnet50')
    assert r50['top1'] == 76.55
    assert r50['url'] == ('https://download.openmmlab.com/mmclassification/v0/resnet/'
                          'resnet50_8xb32_in1k_20210831-ea4938fc.pth')
    rsb = resolve('mmbackbones://resnet50_rsb-a1')
    assert rsb['top1'] == 80.12 and rsb['arch'] == {'type': 'ResNet', 'depth': 50}


def test_zoo_scheme_resolution():
    assert resolve('mmbackbones://resnet50')['source'] == 'mmcls'
    assert resolve('torchvision://resnet50')['url'].endswith('resnet50-0676ba61.pth')
    assert resolve('timm://resnet50')['url'] == \
        'https://huggingface.co/timm/resnet50.a1_in1k/resolve/main/model.safetensors'
    # names the file does not list fall back to what the source knows
    assert resolve('mmcls://resnet50_v1d')['url'].endswith('-db14775a.pth')
    with pytest.raises(KeyError, match='Did you mean'):
        resolve('mmbackbones://resnet5O')


def test_list_zoo_patterns():
    names = [e['name'] for e in list_zoo('resnet50*')]
    assert 'resnet50_8xb32_in1k' in names and 'resnet50.tv_in1k' in names
    assert all(e['source'] == 'timm' for e in list_zoo('vit', source='timm'))
    assert list_zoo('VisionTransformer')  # by arch type, case-insensitive
    assert list_zoo('no-such-model') == []


def test_zoo_command(capsys):
    assert cli_main(['zoo', 'resnet50_8xb32*']) == 0
    out = capsys.readouterr().out
    assert 'resnet50_8xb32_in1k' in out and '76.55' in out
    assert cli_main(['zoo', 'resnet18', '--json']) == 0
    assert any(e['name'] == 'resnet18_8xb32_in1k' for e in json.loads(capsys.readouterr().out))
    assert cli_main(['zoo', 'nothing-like-this']) == 1


# ----- downloads ------------------------------------------------------------------------------
class _Server(LocalHTTPServer):
    """Serves files from a folder on 127.0.0.1 and counts requests."""

    def __init__(self, root):
        self.root, self.hits = root, []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                server.hits.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def small_resnet(tiny_resnet):
    """A ResNet-18 with 8 base channels: a file of a few hundred KB."""
    return lambda **kw: tiny_resnet(base_channels=8, stem_channels=8, **kw)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    srv = _Server(root)
    yield srv
    srv.close()


def cached_files(cache_dir):
    """Every file in the cache but its lock and verified-marker folders."""
    out = []
    for root, dirs, files in os.walk(cache_dir):
        dirs[:] = [d for d in dirs if d not in ('.locks', '.verified')]
        out += [os.path.join(root, f) for f in files]
    return sorted(out)


def _publish(server, small_resnet, name='r18.pth'):
    model = small_resnet()
    path = server.root / name
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()}}, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return model, path, sha


def test_download_verifies_hash_and_hits_cache(server, cache_dir, small_resnet):
    _, _, sha = _publish(server, small_resnet)
    url = server.url('r18.pth')
    path = download(url, sha256=sha, progress=False)
    assert path == cache_path_for(url) and os.path.isfile(path)
    assert path.startswith(str(cache_dir)) and os.path.basename(path) == 'r18.pth'
    assert len(server.hits) == 1
    assert download(url, sha256=sha, progress=False) == path  # cache hit: no second request
    assert len(server.hits) == 1
    assert cached_files(cache_dir) == [path]  # no .part file left


def test_wrong_hash_is_refused_and_the_file_removed(server, cache_dir, small_resnet):
    _publish(server, small_resnet)
    with pytest.raises(ChecksumError, match='expected 0{64}; the file was removed'):
        download(server.url('r18.pth'), sha256='0' * 64, progress=False)
    assert cached_files(cache_dir) == []


def test_hash_prefix_in_file_name_is_checked(server, cache_dir, small_resnet):
    _, path, sha = _publish(server, small_resnet)
    good = server.root / f'r18_20210831-{sha[:8]}.pth'
    bad = server.root / 'r18_20210831-deadbeef.pth'
    good.write_bytes(path.read_bytes())
    bad.write_bytes(path.read_bytes())
    assert hash_prefix_from_url(server.url(good.name)) == sha[:8]
    assert os.path.isfile(download(server.url(good.name), progress=False))
    with pytest.raises(ChecksumError, match='deadbeef'):
        download(server.url(bad.name), progress=False)
    assert not os.path.exists(cache_path_for(server.url(bad.name)))


def test_no_network_message_names_url_and_cache_path(cache_dir):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = f'http://127.0.0.1:{port}/resnet50_8xb32_in1k_20210831-ea4938fc.pth'
    with pytest.raises(DownloadError) as info:
        download(url, progress=False, timeout=5)
    message = str(info.value)
    assert url in message
    assert cache_path_for(url) in message and cache_path_for(url).startswith(str(cache_dir))
    assert 'place it at' in message


def test_http_error_names_status_and_cache_path(server, cache_dir):
    with pytest.raises(DownloadError, match='answered 404') as info:
        download(server.url('missing.pth'), progress=False)
    assert cache_path_for(server.url('missing.pth')) in str(info.value)
    assert cached_files(cache_dir) == []


def test_file_url_download_and_progress_bar(tmp_path, cache_dir, small_resnet, capsys):
    src = tmp_path / 'local.pth'
    torch.save(small_resnet().state_dict(), src)
    path = download(src.as_uri(), progress=True)
    assert open(path, 'rb').read() == src.read_bytes()
    assert 'local.pth' in capsys.readouterr().err  # the progress bar, on stderr


def test_cache_path_names():
    assert cache_path_for('https://huggingface.co/timm/resnet50.a1_in1k/resolve/main/'
                          'model.safetensors').endswith('timm--resnet50.a1_in1k--model.safetensors')
    path = cache_path_for('https://x.org/a/b/r50-0676ba61.pth')
    assert os.path.basename(path) == 'r50-0676ba61.pth'
    assert os.path.basename(os.path.dirname(os.path.dirname(path))) == 'x.org'


def test_zoo_name_through_init_cfg_downloads_once_and_loads(server, cache_dir, small_resnet,
                                                            monkeypatch):
    model, _, sha = _publish(server, small_resnet)
    entry = dict(name='resnet18_local', aliases=['r18local'], source='mmcls',
                 format='mmpretrain', prefix='backbone.', arch=dict(type='ResNet', depth=18),
                 url=server.url('r18.pth'), sha256=sha, top1=None)
    monkeypatch.setattr(zoo_mod, '_ZOO', [entry])
    for uri in ('mmcls://r18local', 'mmbackbones://resnet18_local'):
        fresh = small_resnet(init_cfg=dict(type='Pretrained', checkpoint=uri, strict=True))
        fresh.init_weights()
        for k, v in model.state_dict().items():
            assert torch.equal(fresh.state_dict()[k], v), k
    assert len(server.hits) == 1  # the second name hit the cache


def test_http_url_through_init_cfg(server, cache_dir, small_resnet):
    model, _, _ = _publish(server, small_resnet)
    fresh = small_resnet(init_cfg=dict(type='Pretrained', checkpoint=server.url('r18.pth'),
                                      prefix='backbone', strict=True))
    fresh.init_weights()
    assert torch.equal(fresh.state_dict()['layer4.1.bn2.running_var'],
                       model.state_dict()['layer4.1.bn2.running_var'])
    assert os.path.isfile(cache_path_for(server.url('r18.pth')))


def test_zoo_download_command(server, cache_dir, small_resnet, monkeypatch, capsys):
    _, _, sha = _publish(server, small_resnet)
    entry = dict(name='r18x', aliases=[], source='timm', format='timm', prefix=None,
                 arch=dict(type='ResNet', depth=18), url=server.url('r18.pth'), sha256=sha,
                 top1=None)
    monkeypatch.setattr(zoo_mod, '_ZOO', [entry])
    assert cli_main(['zoo', '--download', 'timm://r18x']) == 0
    assert capsys.readouterr().out.strip() == cache_path_for(server.url('r18.pth'))
    assert cli_main(['zoo', '--download', 'nope']) == 2
