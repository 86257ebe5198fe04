"""``mmbackbones bench``: paired timing, summary statistics, ``--vs`` and the options.

Nothing here checks speed (tests never time things); it checks what is measured and reported.
"""
import json
import shutil

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli, write_toy_config

FAST = ('--input-size', '32', '32', '--iters', '3', '--warmup', '1', '--threads', '1')


def check_row(row, batch, iters):
    assert row['min_ms'] <= row['median_ms'] <= row['max_ms']
    assert row['iters'] == iters
    assert row['images_per_s'] == pytest.approx(batch / (row['median_ms'] / 1e3))


def test_bench_json(tmp_path):
    config = write_toy_config(tmp_path)
    result = run_cli('bench', config, *FAST, '--batch', '2', '--json')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data['batch'], data['input_size'], data['dtype']) == (2, [32, 32], 'float32')
    assert (data['iters'], data['warmup'], data['threads']) == (3, 1, 1)
    assert len(data['rows']) == 1 and 'ratio' not in data
    check_row(data['rows'][0], batch=2, iters=3)


def test_bench_vs_config_ratio(tmp_path):
    config = write_toy_config(tmp_path)
    other = write_toy_config(tmp_path, name='small.py', backbone='out_indices=0')
    result = run_cli('bench', config, *FAST, '--vs', other, '--json')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [r['model'] for r in data['rows']] == [str(config), str(other)]
    for row in data['rows']:
        check_row(row, batch=1, iters=3)
    assert data['ratio'] == pytest.approx(data['rows'][1]['median_ms'] /
                                          data['rows'][0]['median_ms'])


def test_bench_vs_timm_bfloat16_channels_last(tmp_path):
    config = write_toy_config(tmp_path)
    result = run_cli('bench', config, *FAST, '--vs', 'timm:resnet10t', '--dtype', 'bfloat16',
                     '--channels-last', '--json')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data['dtype'] == 'bfloat16' and data['channels_last'] is True
    assert [r['model'] for r in data['rows']][1] == 'timm:resnet10t'
    assert data['ratio'] > 0


def test_bench_table_vs_torchvision(tmp_path):
    config = write_toy_config(tmp_path)
    result = run_cli('bench', config, *FAST, '--vs', 'torchvision:resnet18')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ('median ms', 'min ms', 'max ms', 'images/s', 'torchvision:resnet18',
                 'ratio (other median / ours) =', '1 warm-up + 3 paired iterations'):
        assert text in out, text
    assert ('ours is faster: torchvision:resnet18 takes' in out or 'ours is slower: it takes'
            in out or 'ours and torchvision:resnet18 take the same time' in out), out


@pytest.mark.skipif(shutil.which('g++') is None and shutil.which('c++') is None,
                    reason='torch.compile on CPU needs a C++ compiler')
def test_bench_compile(tmp_path):
    config = write_toy_config(tmp_path, backbone='out_indices=0')
    result = run_cli('bench', config, '--input-size', '16', '16', '--iters', '2', '--warmup', '1',
                     '--threads', '1', '--compile', '--json')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data['compile'] is True
    check_row(data['rows'][0], batch=1, iters=2)


@pytest.mark.parametrize('args, fragment', [
    (['--vs', 'resnet50'], '--vs must be timm:<model>, torchvision:<model> or a config'),
    (['--vs', 'timm:not_a_model_xyz'], "timm has no model 'not_a_model_xyz'"),
    (['--vs', 'torchvision:resnet5'], "torchvision has no classification model 'resnet5' "
     '(similar: resnet50'),
    (['--iters', '0'], "argument --iters: expected a positive integer, got '0'"),
    (['--dtype', 'float64'], "argument --dtype: invalid choice: 'float64'"),
    (['--device', 'cuda:0'], 'CUDA is not available'),
])
def test_bench_errors(tmp_path, args, fragment):
    import torch
    if args[:1] == ['--device'] and torch.cuda.is_available():
        args = ['--device', 'nonsense_device']
        fragment = 'not a torch device'
    config = write_toy_config(tmp_path)
    assert_one_line_error(run_cli('bench', config, *args), 'mmbackbones bench', fragment)


def test_runs_alternate_their_order():
    # In-process: the pairing itself (order and counts), with fake runs.
    from mmbackbones.analysis.benchmark import time_paired
    calls = []
    times = time_paired([lambda: calls.append('a'), lambda: calls.append('b')], iters=4,
                        warmup=1, device='cpu')
    assert calls == ['a', 'b'] + ['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a']
    assert [len(t) for t in times] == [4, 4]


@pytest.mark.parametrize('ratio, sentence', [
    (0.997, 'ours and timm:resnet18 take the same time (within 0.5%)'),
    (0.995, 'ours is slower: it takes 1.005x the time of timm:resnet18'),  # was "1.00x slower"
    (0.98, 'ours is slower: it takes 1.020x the time of timm:resnet18'),
    (0.5, 'ours is slower: it takes 2.000x the time of timm:resnet18'),
    (1.25, 'ours is faster: timm:resnet18 takes 1.250x our time'),
])
def test_speed_sentence_says_faster_or_slower_correctly(ratio, sentence):
    from mmbackbones.analysis.benchmark import speed_sentence
    assert speed_sentence(ratio, 'timm:resnet18') == sentence
