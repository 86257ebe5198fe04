"""The pieces the benchmark scripts share: the training step under autocast, and the GPU
switches refusing a machine without CUDA (the benches are run, not tested, on GPUs)."""
import importlib.util
import os
import sys

import pytest
import torch
from torch import nn

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), 'benchmarks')


def _load(name):
    sys.path.insert(0, BENCH)
    try:
        spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(BENCH)


@pytest.mark.parametrize('amp', [None, torch.bfloat16])
def test_train_step_runs_the_forward_under_autocast(amp):
    benchlib = _load('benchlib')
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    step = benchlib.TrainStep(model, autocast=amp)
    step(torch.randn(2, 3, 8, 8))
    assert seen == [amp or torch.float32]
    assert all(p.grad is None for p in model.parameters())  # dropped after backward


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
@pytest.mark.parametrize('script,out_flag', [('bench_train', '--out'), ('bench_all', '--output')])
def test_cuda_switch_is_refused_without_cuda(script, out_flag, tmp_path, capsys):
    module = _load(script)
    with pytest.raises(SystemExit) as exc:
        module.main(['--device', 'cuda', out_flag, str(tmp_path / 'x.json')])
    assert exc.value.code == 2
    assert 'torch.cuda.is_available() is False' in capsys.readouterr().err
    assert not (tmp_path / 'x.json').exists()
