"""Integrity of checkpoint files and loads (issue #14, items 1 and 6-10): atomic writers,
all-or-nothing loads, corrupt files named, numpy protocol-5 pickles, every scheme routed."""
import hashlib
import json
import os
import pickle
import stat
import struct
import warnings

import numpy as np
import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint import (CheckpointMismatchError, CorruptCheckpointError,
                                    UnsafeCheckpointError, load_checkpoint, load_file,
                                    load_state_dict, save_file)
from mmbackbones.cli import main as cli_main
from mmbackbones.utils.fileio import atomic_output


def _tiny(depth=18, **kwargs):
    return build_backbone(dict(type='ResNet', depth=depth, base_channels=8, stem_channels=8,
                               **kwargs))


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    after = model.state_dict()
    return all(torch.equal(after[k], v) for k, v in before.items())


# ----- 1. writers never truncate or half-write ---------------------------------------------------
@pytest.mark.parametrize('name', ['a.pth', 'a.safetensors'])
def test_convert_onto_its_own_source_keeps_the_data(tmp_path, capsys, name):
    model = _tiny()
    src = tmp_path / name
    save_file({f'backbone.{k}': v for k, v in model.state_dict().items()}, src)
    size = src.stat().st_size
    assert cli_main(['convert', str(src), str(src), '--prefix', 'backbone']) == 0
    assert 'wrote' in capsys.readouterr().out
    written = load_file(src)
    written = written.get('state_dict', written)
    assert set(written) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(written[key], value), key
    assert src.stat().st_size > size * 0.9  # same tensors, not a truncated file
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporary file left behind


def test_atomic_output_leaves_the_old_file_on_failure(tmp_path):
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'old contents')
    with pytest.raises(RuntimeError, match='writer died'):
        with atomic_output(dst) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half')
            raise RuntimeError('writer died')
    assert dst.read_bytes() == b'old contents'
    assert os.listdir(tmp_path) == ['out.pth']
    with atomic_output(dst) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith('.pth')
        with open(tmp, 'wb') as f:
            f.write(b'new')
    assert dst.read_bytes() == b'new'
    mode = stat.S_IMODE(dst.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # the usual permissions, not mkstemp's 0600


def test_save_file_failure_keeps_destination(tmp_path):
    dst = tmp_path / 'w.safetensors'
    save_file({'a': torch.ones(2)}, dst)
    with pytest.raises(Exception):
        save_file({'a': 'not a tensor'}, dst)
    assert torch.equal(load_file(dst)['a'], torch.ones(2))
    assert os.listdir(tmp_path) == ['w.safetensors']


# ----- 6. all-or-nothing loads -------------------------------------------------------------------
def _uncopyable_cases(model):
    sd = model.state_dict()
    dense = sd['layer1.0.conv1.weight']
    bias = sd['layer4.1.bn2.bias']
    return {
        'sparse': ('layer4.1.bn2.bias', bias.to_sparse(), 'sparse'),
        'meta': ('layer4.1.bn2.bias', torch.empty(bias.shape, device='meta'), 'meta'),
        'quantized': ('layer1.0.conv1.weight',
                      torch.quantize_per_tensor(dense.clone(), 0.1, 0, torch.qint8),
                      'quantized'),
    }


@pytest.mark.parametrize('case', ['sparse', 'meta', 'quantized'])
def test_uncopyable_tensor_of_the_right_shape_loads_nothing(case):
    model = _tiny()
    before = _snapshot(model)
    source = _tiny()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1)
    sd = dict(source.state_dict())
    key, bad, word = _uncopyable_cases(model)[case]
    sd[key] = bad
    with pytest.raises(CheckpointMismatchError, match=word) as info:
        load_state_dict(model, sd, logger='silent')
    assert key in str(info.value) and 'nothing was loaded' in str(info.value)
    assert _unchanged(model, before)


def test_vit_built_on_meta_refuses_forward_after_a_failed_load(tmp_path):
    cfg = dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                                   feedforward_channels=64),
               img_size=32, patch_size=16)
    source = build_backbone(cfg)
    sd = dict(source.state_dict())
    key = 'layers.1.ffn.layers.1.weight' if 'layers.1.ffn.layers.1.weight' in sd else \
        sorted(k for k in sd if k.startswith('layers.1') and k.endswith('weight'))[-1]
    sd[key] = sd[key].to_sparse()  # the right shape, cannot be copied
    path = tmp_path / 'vit.pth'
    torch.save(sd, path)
    model = build_backbone(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with pytest.raises(CheckpointMismatchError):
        model.init_weights()
    with pytest.raises(RuntimeError, match='not initialised'):
        model(torch.zeros(1, 3, 32, 32))
    # a good file afterwards makes it usable
    torch.save(source.state_dict(), path)
    load_checkpoint(model, str(path), strict=True, logger='silent')
    out = model(torch.zeros(1, 3, 32, 32))
    assert torch.allclose(out[-1], source(torch.zeros(1, 3, 32, 32))[-1])


# ----- 7. the CLI reports a checkpoint that does not fit -----------------------------------------
@pytest.fixture
def r18_config(tmp_path):
    path = tmp_path / 'r18.py'
    path.write_text("model = dict(backbone=dict(type='ResNet', depth=18, base_channels=8, "
                    "stem_channels=8))\n")
    return path


@pytest.mark.parametrize('command', ['info', 'export'])
def test_cli_checkpoint_mismatch_is_exit_2_unless_non_strict(tmp_path, capsys, r18_config,
                                                             command):
    r34 = tmp_path / 'r34.pth'
    torch.save(_tiny(34).state_dict(), r34)
    extra = {'info': ['--no-flops', '--no-memory', '--input-size', '32', '32'],
             'export': ['-o', str(tmp_path / 'm.onnx'), '--input-size', '32', '32',
                        '--no-verify']}[command]
    code = cli_main([command, str(r18_config), '--checkpoint', str(r34), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith(f'mmbackbones {command}: error: --checkpoint')
    assert 'unexpected' in err and '--non-strict' in err
    assert not (tmp_path / 'm.onnx').exists()
    if command == 'info':
        assert cli_main([command, str(r18_config), '--checkpoint', str(r34), '--non-strict',
                         *extra]) == 0


# ----- 8. corrupt files are named -----------------------------------------------------------------
def _good_files(tmp_path):
    sd = _tiny().state_dict()
    pth, st = tmp_path / 'good.pth', tmp_path / 'good.safetensors'
    torch.save(sd, pth)
    save_file(sd, st)
    return pth, st


def test_truncated_torch_file_is_named(tmp_path):
    pth, _ = _good_files(tmp_path)
    data = pth.read_bytes()
    bad = tmp_path / 'cut.pth'
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError) as info:
        load_file(bad)
    message = str(info.value)
    assert str(bad) in message and 'torch.save zip' in message and 'truncated' in message


def test_truncated_safetensors_is_named(tmp_path):
    _, st = _good_files(tmp_path)
    data = st.read_bytes()
    for cut, word in ((len(data) // 2, 'truncated'), (20, 'truncated')):
        bad = tmp_path / f'cut{cut}.safetensors'
        bad.write_bytes(data[:cut])
        with pytest.raises(CorruptCheckpointError) as info:
            load_file(bad)
        assert str(bad) in str(info.value) and 'safetensors' in str(info.value)
        assert word in str(info.value)


def test_bad_safetensors_json_is_named(tmp_path):
    header = b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]'  # no closing brace
    bad = tmp_path / 'badjson.safetensors'
    bad.write_bytes(struct.pack('<Q', len(header)) + header + b'\0' * 8)
    with pytest.raises(CorruptCheckpointError, match='JSON header is malformed') as info:
        load_file(bad)
    assert str(bad) in str(info.value)


def test_truncated_legacy_and_pickle_files_are_named(tmp_path):
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    cut = tmp_path / 'legacy_cut.pth'
    cut.write_bytes(legacy.read_bytes()[:40])
    with pytest.raises(CorruptCheckpointError, match='legacy torch.save') as info:
        load_file(cut)
    assert str(cut) in str(info.value) and 'truncated' in str(info.value)
    pkl = tmp_path / 'cut.pkl'
    pkl.write_bytes(pickle.dumps({'w': np.ones(3)}, protocol=2)[:30])
    with pytest.raises(CorruptCheckpointError, match='truncated') as info:
        load_file(pkl)
    assert str(pkl) in str(info.value)


def test_convert_of_a_corrupt_file_is_one_line_exit_2(tmp_path, capsys):
    pth, _ = _good_files(tmp_path)
    bad = tmp_path / 'cut.pth'
    bad.write_bytes(pth.read_bytes()[:1000])
    assert cli_main(['convert', str(bad), str(tmp_path / 'out.safetensors')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith('mmbackbones convert: error:') and str(bad) in err
    assert not (tmp_path / 'out.safetensors').exists()


# ----- 9. formats we read, init_cfg as a path -----------------------------------------------------
def test_numpy_protocol5_pickle_loads(tmp_path):
    arrays = {'conv.weight': np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
              'fortran': np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))}
    path = tmp_path / 'p5.pkl'
    path.write_bytes(pickle.dumps({'model': arrays}, protocol=5))
    assert b'_frombuffer' in path.read_bytes()
    loaded = load_file(path)['model']
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_numpy_functions_other_than_the_rebuilders_are_refused(tmp_path):
    class _CallsNumpy:
        def __reduce__(self):
            return (np.save, ('/tmp/never', np.ones(1)))

    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'w': _CallsNumpy()}, protocol=5))
    with pytest.raises(UnsafeCheckpointError, match='only numpy arrays'):
        load_file(path)


def test_init_cfg_string_is_a_pretrained_path(tmp_path):
    source = _tiny()
    path = tmp_path / 'r18.pth'
    torch.save(source.state_dict(), path)
    model = _tiny(init_cfg=str(path))
    assert model.init_cfg == dict(type='Pretrained', checkpoint=str(path))
    model.init_weights()
    assert _unchanged(model, source.state_dict())
    with pytest.raises(TypeError, match='init_cfg must be'):
        _tiny(init_cfg=5)


# ----- 10. every scheme is ours; lossy dtypes warn -----------------------------------------------
def test_every_mmengine_scheme_routes_through_our_loaders():
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader.__module__ == 'mmbackbones.checkpoint.loading', (prefix, loader)
    for name in ('modelzoo://resnet50', 'pavi://x/y', 's3://bucket/r.pth',
                 'petrel://bucket/r.pth', 'cluster:s3://bucket/r.pth', 'open-mmlab://x'):
        loader = CheckpointLoader._get_checkpoint_loader(name)
        assert loader.__module__ == 'mmbackbones.checkpoint.loading', name


def test_pavi_is_refused_clearly():
    from mmbackbones.checkpoint import read_checkpoint
    with pytest.raises(ValueError, match='pavi:// checkpoints are not supported'):
        read_checkpoint('pavi://models/r50.pth')


def test_s3_bytes_go_through_the_safe_loader(tmp_path, monkeypatch):
    """s3:// bytes come from mmengine's file backend (stood in for here: no object store in CI),
    then the same safe loader as local files runs on them."""
    import mmengine.fileio

    from mmbackbones.checkpoint import read_checkpoint
    good, evil, marker = tmp_path / 'good.pth', tmp_path / 'evil.pth', tmp_path / 'pwned'

    class _Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    torch.save({'w': torch.arange(3.)}, good)
    torch.save({'w': torch.ones(1), 'meta': _Evil()}, evil)
    blobs = {'s3://bucket/good.pth': good.read_bytes(), 's3://bucket/evil.pth': evil.read_bytes()}
    monkeypatch.setattr(mmengine.fileio, 'get', lambda name, **kw: blobs[name])
    assert torch.equal(read_checkpoint('s3://bucket/good.pth')['w'], torch.arange(3.))
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint('s3://bucket/evil.pth')
    assert not marker.exists()


def test_integer_tensors_into_float_parameters_warn():
    model = _tiny()
    sd = dict(model.state_dict())
    sd['layer1.0.bn1.weight'] = torch.ones(sd['layer1.0.bn1.weight'].shape, dtype=torch.int64)
    sd['layer1.0.bn1.bias'] = torch.zeros(sd['layer1.0.bn1.bias'].shape, dtype=torch.bool)
    with pytest.warns(UserWarning, match='non-floating-point') as record:
        report = load_state_dict(model, sd, logger='silent')
    text = str(record[0].message)
    assert 'layer1.0.bn1.weight: torch.int64' in text and 'torch.bool' in text
    assert any('non-floating-point' in n for n in report.notes)
    assert torch.equal(model.layer1[0].bn1.weight, torch.ones_like(model.layer1[0].bn1.weight))
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # float tensors: no warning
        load_state_dict(model, _tiny().state_dict(), logger='silent')


def test_state_dict_read_is_a_dataclass(tmp_path):
    from mmbackbones.checkpoint import StateDictRead, read_state_dict
    path = tmp_path / 'cls.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in _tiny().state_dict().items()},
                'meta': {'x': 1}}, path)
    read = read_state_dict(str(path), target=_tiny(), logger='silent')
    assert isinstance(read, StateDictRead)
    assert read.converter == 'mmpretrain_classifier' and read.prefix is None
    assert read.notes == ['converted with mmpretrain_classifier']
    assert json.dumps(read.notes)


# ----- 12. other libraries' modules keep mmengine's semantics ------------------------------------
class _ForeignNet(torch.nn.Module):
    """Stands for another library's module (its class lives outside mmbackbones)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)


def test_foreign_module_keeps_mmengine_semantics_and_ours_is_all_or_nothing(tmp_path):
    from mmengine.model.weight_init import initialize
    source = _ForeignNet()
    sd = dict(source.state_dict())
    sd['fc.weight'] = torch.zeros(5, 4)  # a shape mismatch: mmengine logs it and loads the rest
    path = tmp_path / 'foreign.pth'
    torch.save(sd, path)
    target = _ForeignNet()
    initialize(target, dict(type='Pretrained', checkpoint=str(path)))
    assert torch.equal(target.conv.weight, source.conv.weight)  # loaded as mmengine would
    assert not torch.equal(target.fc.weight, torch.zeros(2, 4).expand_as(target.fc.weight))
    ours = _tiny()
    before = _snapshot(ours)
    bad = dict(_tiny().state_dict())
    bad['layer4.1.bn2.bias'] = torch.zeros(3)
    torch.save(bad, path)
    with pytest.raises(CheckpointMismatchError, match='layer4.1.bn2.bias'):
        initialize(ours, dict(type='Pretrained', checkpoint=str(path)))
    assert _unchanged(ours, before)


def test_modelzoo_scheme_is_torchvision_through_our_cache(tmp_path, cache_dir, monkeypatch):
    from mmbackbones.checkpoint import read_checkpoint
    from mmbackbones.checkpoint import zoo as zoo_mod
    source, weights = tmp_path / 'tv_r18.pth', _tiny().state_dict()
    torch.save(weights, source)
    entry = dict(name='r18tv', aliases=[], source='torchvision', format='torchvision',
                 prefix=None, arch=dict(type='ResNet', depth=18), url=source.as_uri(),
                 sha256=hashlib.sha256(source.read_bytes()).hexdigest(), top1=None)
    monkeypatch.setattr(zoo_mod, '_ZOO', [entry])
    loaded = read_checkpoint('modelzoo://r18tv')
    assert loaded['meta']['zoo_name'] == 'torchvision://r18tv'
    assert loaded['meta']['path'].startswith(str(cache_dir))  # downloaded and hash-checked
    for key, value in weights.items():
        assert torch.equal(loaded['state_dict'][key], value), key
