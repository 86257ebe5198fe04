"""Safe loading: no code from a checkpoint runs; real-world checkpoints still load."""
import os
import pickle

import numpy as np
import pytest
import torch

from mmbackbones.checkpoint import UnsafeCheckpointError, load_checkpoint, load_file
from mmbackbones.checkpoint.io import Placeholder, detect_file_format


class _CreatesFile:
    """Unpickling this runs ``open(path, 'w')`` through ``os.system``-like machinery."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}',))


class _WritesOnSetstate:
    """A custom class whose ``__setstate__`` creates a file if it were ever called."""

    def __init__(self, path):
        self.path = path

    def __setstate__(self, state):  # pragma: no cover - must never run
        open(state['path'], 'w').close()


def _assert_refused_and_not_run(path, marker, match: str) -> None:
    with pytest.raises(UnsafeCheckpointError, match=match):
        load_file(str(path))
    assert not marker.exists()


def test_malicious_top_level_pickle_refused_and_file_not_created(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save(_CreatesFile(marker), path)
    _assert_refused_and_not_run(path, marker, 'system')


def test_malicious_object_in_meta_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil_meta.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': _CreatesFile(marker)}, path)
    _assert_refused_and_not_run(path, marker, 'can run code')


def test_malicious_legacy_format_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil_legacy.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': _CreatesFile(marker)}, path,
               _use_new_zipfile_serialization=False)
    assert detect_file_format(str(path)) == 'torch-legacy'
    _assert_refused_and_not_run(path, marker, 'Nothing from it was run')


def test_malicious_plain_pickle_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'model': {'stem.conv1.weight': np.ones(3)}, 'x': _CreatesFile(marker)}, f)
    _assert_refused_and_not_run(path, marker, 'system')


def test_malicious_checkpoint_through_init_cfg_is_refused(tmp_path, tiny_resnet):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'conv1.weight': torch.ones(1)}, 'x': _CreatesFile(marker)}, path)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(UnsafeCheckpointError):
        model.init_weights()
    assert not marker.exists()


def test_unknown_class_in_meta_becomes_inert_placeholder(tmp_path, mm_log):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'custom_meta.pth'
    weights = {'w': torch.arange(4.)}
    torch.save({'state_dict': weights, 'meta': {'obj': _WritesOnSetstate(str(marker))}}, path)
    loaded = load_file(str(path))
    assert torch.equal(loaded['state_dict']['w'], weights['w'])
    obj = loaded['meta']['obj']
    assert isinstance(obj, Placeholder) and obj.global_name.endswith('_WritesOnSetstate')
    assert not marker.exists()
    assert 'NOT imported or run' in mm_log.text and '_WritesOnSetstate' in mm_log.text


def test_placeholder_where_the_weights_should_be_is_an_error(tmp_path):
    path = tmp_path / 'custom_sd.pth'
    torch.save({'state_dict': {'w': _WritesOnSetstate('x')}}, path)
    model = torch.nn.Linear(1, 1)
    with pytest.raises(TypeError, match="'w' is a Placeholder"):
        load_checkpoint(model, str(path))


class _Trusted:
    """A harmless class a user may decide to trust."""


def test_allowed_globals_is_an_explicit_opt_in(tmp_path):
    path = tmp_path / 'trusted.pth'
    obj = _Trusted()
    obj.value = 3
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {'obj': obj}}, path)
    assert isinstance(load_file(str(path))['meta']['obj'], Placeholder)
    trusted = load_file(str(path), allowed_globals=[_Trusted])['meta']['obj']
    assert type(trusted) is _Trusted and trusted.value == 3


def test_mmengine_runner_checkpoint_loads(tmp_path, tiny_resnet):
    """A checkpoint shaped like mmengine's Runner.save_checkpoint: meta with numpy scalars,
    message_hub with HistoryBuffer objects, optimizer and param scheduler states."""
    from mmengine.logging import MessageHub
    from mmengine.optim import MultiStepLR, OptimWrapper

    model = tiny_resnet()
    hub = MessageHub.get_instance('test_runner_ckpt')
    hub.update_scalar('train/loss', 0.25)
    hub.update_scalar('train/lr', np.float64(0.1))
    hub.update_info('best_score', np.float64(0.7))
    hub.update_info('epoch', 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32))[0].mean().backward()
    optimizer.step()
    wrapper = OptimWrapper(optimizer)
    scheduler = MultiStepLR(optimizer, milestones=[1, 2])
    checkpoint = {
        'meta': dict(epoch=3, iter=30, cfg='model = dict(type="ResNet")', seed=np.int64(42),
                     experiment_name='exp', time='20250101_000000', mmengine_version='0.10.7',
                     dataset_meta=dict(classes=('cat', 'dog')), best=np.float32(0.5),
                     hist=np.arange(3)),
        'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()},
        'message_hub': hub.state_dict(),
        'optimizer': wrapper.state_dict(),
        'param_schedulers': [scheduler.state_dict()],
    }
    path = tmp_path / 'epoch_3.pth'
    torch.save(checkpoint, path)
    # torch's own weights-only default refuses this file: the allow-list is what makes it load
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    loaded = load_file(str(path))
    assert '_mmbackbones_placeholders' not in loaded  # everything in it is on the allow-list
    assert loaded['meta']['seed'] == 42
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.25
    fresh = tiny_resnet()
    report = load_checkpoint(fresh, str(path), prefix='backbone', strict=True)
    assert report.ok
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_safetensors_load_natively(tmp_path, tiny_resnet):
    from safetensors.torch import save_file
    model = tiny_resnet()
    path = tmp_path / 'r18.safetensors'
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert detect_file_format(str(path)) == 'safetensors'
    fresh = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path), strict=True))
    fresh.init_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_torch_files_are_memory_mapped(tmp_path):
    """mmap=True: tensors are views of the file's pages, not a second copy in memory."""
    path = tmp_path / 'big.pth'
    torch.save({'w': torch.randn(256, 256)}, path)
    loaded = load_file(str(path))
    storage = loaded['w'].untyped_storage()
    # an mmap-backed storage is file-backed and does not own a resizable allocation
    assert not storage.resizable()
    assert torch.equal(loaded['w'], torch.load(path, weights_only=True)['w'])


def test_process_wide_allow_list_is_left_alone(tmp_path):
    """The extra types are allowed inside a context only: torch.load elsewhere is unchanged."""
    before = set(map(repr, torch.serialization.get_safe_globals()))
    path = tmp_path / 'np.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {'x': np.float64(1.0)}}, path)
    assert load_file(str(path))['meta']['x'] == 1.0
    assert set(map(repr, torch.serialization.get_safe_globals())) == before
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_whole_pickled_model_is_refused_with_advice(tmp_path):
    path = tmp_path / 'whole_model.pth'
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    with pytest.raises(TypeError, match=r'Placeholder for torch\.nn\.modules\.container\.'
                                        r'Sequential.*save model\.state_dict\(\) instead'):
        load_checkpoint(torch.nn.Linear(2, 2), str(path))
