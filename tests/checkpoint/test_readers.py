"""Readers read by content and never lie (issue #24, item 2): a torch zip named .safetensors,
compressed zip records, duplicate safetensors names, a zip cut in its central directory, and
paths that are not files (a directory, a FIFO, a device)."""
import json
import os
import shutil
import struct
import threading
import zipfile

import pytest
import torch

from mmbackbones.checkpoint import CorruptCheckpointError, load_file, save_file
from mmbackbones.checkpoint.io import NotACheckpointFileError
from mmbackbones.cli import main as cli_main


def _state():
    g = torch.Generator().manual_seed(0)
    return {'conv.weight': torch.randn(8, 4, 3, 3, generator=g),
            'bn.running_mean': torch.randn(8, generator=g),
            'fc.weight': torch.arange(64, dtype=torch.float32).reshape(8, 8)}


def _same(loaded, expected):
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key


def _repack(src, dst, method):
    """``src`` (a torch.save zip) rewritten with every record compressed by ``method``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename), compress_type=method)
    with zipfile.ZipFile(dst) as check:
        assert {i.compress_type for i in check.infolist()} == {method}
    return dst


# ----- by content, whatever the extension ---------------------------------------------------------
def test_torch_zip_named_safetensors_loads_by_content(tmp_path):
    sd = _state()
    torch.save(sd, tmp_path / 'real.pth')
    named = tmp_path / 'model.safetensors'
    shutil.copy(tmp_path / 'real.pth', named)
    _same(load_file(named), sd)


def test_safetensors_named_pth_loads_by_content(tmp_path):
    sd = _state()
    save_file(sd, tmp_path / 'real.safetensors')
    named = tmp_path / 'model.pth'
    shutil.copy(tmp_path / 'real.safetensors', named)
    _same(load_file(named), sd)


# ----- compressed zip records ---------------------------------------------------------------------
def test_deflated_zip_records_are_inflated_not_read_as_raw_bytes(tmp_path):
    sd = _state()
    torch.save(sd, tmp_path / 'plain.pth')
    packed = _repack(tmp_path / 'plain.pth', tmp_path / 'deflated.pth', zipfile.ZIP_DEFLATED)
    _same(load_file(packed), sd)


def test_zip_compression_torch_cannot_read_is_refused_by_name(tmp_path):
    torch.save(_state(), tmp_path / 'plain.pth')
    packed = _repack(tmp_path / 'plain.pth', tmp_path / 'bz.pth', zipfile.ZIP_BZIP2)
    with pytest.raises(CorruptCheckpointError, match='bzip2') as info:
        load_file(packed)
    assert str(packed) in str(info.value)


# ----- malformed files ----------------------------------------------------------------------------
def test_duplicate_tensor_names_in_a_safetensors_header_are_refused(tmp_path):
    # the JSON names 'w' twice; safetensors' reader keeps the last (F32) without a word
    header = (b'{"w": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}, '
              b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}')
    header += b' ' * (-len(header) % 8)
    path = tmp_path / 'dup.safetensors'
    path.write_bytes(struct.pack('<Q', len(header)) + header + struct.pack('<f', 1.5))
    with pytest.raises(CorruptCheckpointError, match='more than once') as info:
        load_file(path)
    assert "'w'" in str(info.value) and str(path) in str(info.value)


def test_distinct_names_still_load(tmp_path):
    header = json.dumps({'a': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]},
                         'b': {'dtype': 'F32', 'shape': [1], 'data_offsets': [4, 8]},
                         '__metadata__': {'a': 'b'}}).encode()
    header += b' ' * (-len(header) % 8)
    path = tmp_path / 'ok.safetensors'
    path.write_bytes(struct.pack('<Q', len(header)) + header + struct.pack('<2f', 1.0, 2.0))
    assert {k: v.item() for k, v in load_file(path).items()} == {'a': 1.0, 'b': 2.0}


def test_zip_cut_inside_its_central_directory_says_truncated(tmp_path):
    torch.save(_state(), tmp_path / 'good.pth')
    data = (tmp_path / 'good.pth').read_bytes()
    start = data.rfind(b'PK\x01\x02')  # the last central-directory entry
    assert start > 0
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:start + 20])
    with pytest.raises(CorruptCheckpointError) as info:
        load_file(cut)
    message = str(info.value)
    assert 'truncated' in message and str(cut) in message and 'Errno' not in message


# ----- paths that are not files -------------------------------------------------------------------
def test_a_directory_says_it_is_a_directory(tmp_path, capsys):
    with pytest.raises(NotACheckpointFileError, match='is a directory') as info:
        load_file(tmp_path)
    assert 'not found' not in str(info.value)
    assert cli_main(['convert', str(tmp_path), str(tmp_path / 'out.safetensors')]) == 2
    assert 'is a directory' in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists('/dev/zero'), reason='no /dev/zero on this system')
def test_a_device_says_it_is_a_device():
    with pytest.raises(NotACheckpointFileError, match='character device'):
        load_file('/dev/zero')


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='os.mkfifo is not available here')
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / 'pipe.pth'
    os.mkfifo(fifo)
    outcome = {}

    def read():
        try:
            load_file(fifo)
            outcome['result'] = 'loaded'
        except Exception as e:  # noqa: BLE001 - recorded and checked below
            outcome['result'] = e

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)  # a guard only: the refusal comes at once (no open, no read)
    if worker.is_alive():
        # unblock the reader (it waits for a writer) so no thread stays stuck, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail('load_file blocked on a FIFO')
    assert isinstance(outcome['result'], NotACheckpointFileError), outcome
    assert 'FIFO' in str(outcome['result']) and str(fifo) in str(outcome['result'])
