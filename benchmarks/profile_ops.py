"""Op-count diff of the models a benchmark builds: which ATen ops ours runs more often than the
anchors (mmpretrain, timm, mmdet, mmseg, detectron2), for inference and one training step.

On a shared machine wall-clock ratios swing by 20% from run to run; the op lists do not. Each
model runs once under ``torch.profiler`` (CPU) after one warm-up call, and every ATen op whose
count differs between the models is listed with its counts (``-v``: all ops, with their self
CPU time, which is as noisy as the clock). Extra ``copy_``/``clone``/``contiguous`` calls,
composite activations, per-call padding and the like show up here as differences.

    python benchmarks/profile_ops.py bench_mobile EfficientNet [--size 64] [--batch 2]
    python benchmarks/profile_ops.py bench_resnest res2net
    .venv-downstream/bin/python benchmarks/profile_ops.py bench_yolo_csp rtmdet-s

The first argument names a benchmark module of this folder, the second what its
``build_models`` (or ``build``) takes: a family, network or arch name.
"""
import argparse
import collections
import importlib
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))
from benchlib import TrainStep, last_tensor  # noqa: E402


def op_counts(fn, x) -> tuple:
    """``({op: calls}, {op: self CPU microseconds})`` of the ATen ops of one ``fn(x)``."""
    from torch.profiler import ProfilerActivity, profile
    fn(x)  # warm-up (lazy initialisation, allocator)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(x)
    counts, times = collections.Counter(), collections.Counter()
    for event in prof.key_averages():
        if event.key.startswith('aten::'):
            counts[event.key] += event.count
            times[event.key] += event.self_cpu_time_total
    return counts, times


def _infer(model):
    def run(x):
        with torch.inference_mode():
            return last_tensor(model(x))
    return run


def compare(models: dict, x, mode: str, verbose: bool = False) -> dict:
    """Print the op table of ``models`` for ``mode`` (``'infer'``/``'train'``); returns the
    total op count per model."""
    results = {}
    for name, model in models.items():
        model.train(mode == 'train')  # (mmpretrain's train() returns None: no chaining)
        results[name] = op_counts(TrainStep(model) if mode == 'train' else _infer(model), x)
    names = list(results)
    ops = set().union(*(counts for counts, _ in results.values()))
    print(f'== {mode}: calls' + (' / self ms' if verbose else '') + ' per op')
    print(f'{"op":44s}' + ''.join(f'{n:>20s}' for n in names))
    for op in sorted(ops):
        row = [results[n][0][op] for n in names]
        if verbose or len(set(row)) > 1:
            cells = (f'{c:>10d}/{results[n][1][op] / 1e3:8.2f}' if verbose else f'{c:>20d}'
                     for c, n in zip(row, names))
            print(f'{op:44s}' + ''.join(cells))
    totals = {n: sum(results[n][0].values()) for n in names}
    print(f'{"total ATen calls":44s}' + ''.join(f'{totals[n]:>20d}' for n in names))
    return totals


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('bench', help='a benchmark module of this folder, e.g. bench_mobile')
    parser.add_argument('name', help="what its build_models/build takes, e.g. 'EfficientNet'")
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=2, help='2+: a training BN needs it')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('-v', '--verbose', action='store_true', help='every op, with times')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    module = importlib.import_module(args.bench)
    build = getattr(module, 'build_models', None) or getattr(module, 'build')
    models = build(args.name)
    x = torch.randn(args.batch, 3, args.size, args.size)
    return {mode: compare(models, x, mode, args.verbose) for mode in ('infer', 'train')}


if __name__ == '__main__':
    main()
