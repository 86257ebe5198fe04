"""InternImage CPU latency: ours vs detrex's InternImage (the official code) with its
pure-PyTorch DCNv3 (``core_op='DCNv3_pytorch'``; detrex's compiled op has no CPU kernel), the
same network and weights, inference and a training step, in one run.

timm has no InternImage, so detrex is the reference: run it with the detectron2 environment
(``.venv-detectron2/bin/python benchmarks/bench_internimage.py``). Ours is the core
``InternImage`` (``arch``, all four stages returned); detrex's class loads the same state dict
(the names are the same) and the four maps of both are checked equal before timing.

Runs are paired (each round calls every model once, rotating the order). Reported: median
latency per model and the median of the per-round ratios ours/detrex (target <= 1.00).

    python benchmarks/bench_internimage.py [--quick] [--threads 2] [--batch 2] [--size 224]

On a loaded machine use ``--threads 1``: with 2 threads on 2 busy cores both models ran ~15x
slower (OpenMP threads waiting on each other) and the ratios were noise.
"""
import argparse
import logging
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import TrainStep, per_round_ratios, timed_rounds, write_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_models(arch: str = 'tiny') -> dict:
    """``{'ours', 'detrex'}`` in eval mode with identical weights, four outputs each."""
    try:
        from detrex.modeling.backbone import InternImage as DetrexInternImage
    except ImportError:
        sys.exit('bench_internimage needs detrex (the detectron2 environment: '
                 '.venv-detectron2/bin/python benchmarks/bench_internimage.py)')
    from mmbackbones.models.backbones.internimage import InternImage, arch_settings

    logging.disable(logging.INFO)  # detrex's class logs its settings
    ours = InternImage(arch, out_indices=(0, 1, 2, 3), drop_path_rate=0.).eval()
    settings = dict(arch_settings[arch])
    theirs = DetrexInternImage(core_op='DCNv3_pytorch', drop_path_rate=0., **settings).eval()
    gen = torch.Generator().manual_seed(0)
    state = {k: v + 0.02 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
             for k, v in ours.state_dict().items()}
    ours.load_state_dict(state)
    theirs.load_state_dict(state)
    return {'ours': ours, 'detrex': theirs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 128 px, 4 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--arch', default='tiny')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'internimage.json'))
    args = parser.parse_args(argv)
    batch = args.batch or (1 if args.quick else 2)
    size = args.size or (128 if args.quick else 224)
    rounds = args.rounds or (4 if args.quick else 10)
    warmup = 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = build_models(args.arch)
    fns = {'ours': lambda x: models['ours'](x),
           'detrex': lambda x: tuple(models['detrex'](x).values())}
    x = torch.randn(batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    with torch.inference_mode():
        ref, got = fns['detrex'](x), fns['ours'](x)
        diff = max(float((g - r).abs().max() / r.abs().max()) for g, r in zip(got, ref))
        infer = timed_rounds(fns, x, rounds, warmup, time.perf_counter)
    for model in models.values():
        model.train()
    train = timed_rounds({k: TrainStep(models[k], fns[k]) for k in fns}, x, rounds, warmup,
                         time.perf_counter)
    report = dict(
        benchmark='internimage', arch=args.arch, batch=batch, size=size, dtype='float32',
        device='cpu', threads=args.threads, clock='wall', rounds=rounds, quick=args.quick,
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        inference_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in infer.items()},
        train_step_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in train.items()},
        ratio_ours_vs_detrex_inference=round(statistics.median(
            per_round_ratios(infer, 'ours', 'detrex')), 4),
        ratio_ours_vs_detrex_train_step=round(statistics.median(
            per_round_ratios(train, 'ours', 'detrex')), 4),
        max_rel_diff_vs_detrex=diff)
    print(f'InternImage-{args.arch}, batch {batch}, {size}x{size}, fp32, {args.threads} '
          f'threads, {rounds} paired rounds (load average {load_before}); max rel diff '
          f'{diff:.1e}')
    print(f'  inference  {report["inference_median_ms"]}  ours/detrex '
          f'{report["ratio_ours_vs_detrex_inference"]:.3f}')
    print(f'  train step {report["train_step_median_ms"]}  ours/detrex '
          f'{report["ratio_ours_vs_detrex_train_step"]:.3f}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
