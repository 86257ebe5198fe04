"""ResNeSt-50 (``--family res2net``: Res2Net-50 26w x 4s) on the CPU: inference and one training
step, ours vs mmpretrain's class and timm's, in one run.

The three are the same network with the same weights (ours randomized with realistic BN
statistics, loaded into mmpretrain's module, whose keys are ours, and into timm's
``resnest50d`` / ``res2net50_26w_4s`` ``features_only`` model through our timm converter's way
back); each returns the four stage maps, and the outputs are checked equal before timing. The
training step is forward, a scalar loss on the last map, backward (``benchlib.TrainStep``).

Runs are paired: each round calls every model once in a rotating order, so drifts of a shared
machine hit all alike. Reported: median per model, the medians of the per-round ratios
ours/mmpretrain and ours/timm (target <= 1.00), for inference and for the training step.

    python benchmarks/bench_resnest.py [--family resnest|res2net] [--quick] [--threads 2]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (TrainStep, per_round_ratios, randomize_, timed_rounds,  # noqa: E402
                      write_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
ALL = (0, 1, 2, 3)


def build_models(family: str) -> dict:
    """``{'ours', 'mmpretrain', 'timm'}``: identical weights, eval mode."""
    import timm
    from mmpretrain.models import backbones as mmpretrain_backbones
    if family == 'resnest':
        from mmbackbones.checkpoint.converters.timm_resnest import revert_timm_resnest as revert
        from mmbackbones.models.backbones.resnest import ResNeSt as Ours
        kwargs, timm_name = dict(depth=50), 'resnest50d'
        theirs_cls = mmpretrain_backbones.ResNeSt
    else:
        from mmbackbones.checkpoint.converters.timm_res2net import revert_timm_res2net as revert
        from mmbackbones.models.backbones.res2net import Res2Net as Ours
        kwargs = dict(depth=50, scales=4, base_width=26, deep_stem=False, avg_down=False)
        timm_name, theirs_cls = 'res2net50_26w_4s', mmpretrain_backbones.Res2Net
    ours = Ours(out_indices=ALL, **kwargs).eval()
    state = randomize_(ours)
    theirs = theirs_cls(out_indices=ALL, **kwargs)
    theirs.load_state_dict(state)
    timm_model = timm.create_model(timm_name, features_only=True, out_indices=(1, 2, 3, 4))
    timm_model.load_state_dict(revert(state))
    theirs.eval()  # (mmpretrain's train()/eval() return None)
    timm_model.eval()
    return {'ours': ours, 'mmpretrain': theirs, 'timm': timm_model}


def _ratios(times: dict) -> dict:
    return {f'ours_vs_{other}': round(statistics.median(per_round_ratios(times, 'ours', other)),
                                      4) for other in ('mmpretrain', 'timm')}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', choices=('resnest', 'res2net'), default='resnest')
    parser.add_argument('--quick', action='store_true', help='batch 2, 128 px, 4 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    # a training BN needs 2+ samples (ResNeSt's attention is pooled to 1x1)
    batch = args.batch or (2 if args.quick else 4)
    size = args.size or (128 if args.quick else 224)
    rounds = args.rounds or (4 if args.quick else 11)
    warmup = 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = build_models(args.family)
    x = torch.randn(batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    with torch.inference_mode():
        ref = models['mmpretrain'](x)
        diff = {name: max(float((o - r).abs().max() / r.abs().max())
                          for o, r in zip(model(x), ref)) for name, model in models.items()}
        infer = timed_rounds(models, x, rounds, warmup, time.perf_counter)
    for model in models.values():
        model.train()
    steps = {name: TrainStep(model) for name, model in models.items()}
    train = timed_rounds(steps, x, rounds, warmup, time.perf_counter)
    report = dict(
        benchmark=args.family, batch=batch, size=size, dtype='float32', device='cpu',
        threads=args.threads, clock='wall', rounds=rounds, quick=args.quick,
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        inference_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in infer.items()},
        train_step_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in train.items()},
        inference_ratio=_ratios(infer), train_step_ratio=_ratios(train),
        max_rel_diff_vs_mmpretrain=diff)
    print(f'{args.family}-50, batch {batch}, {size}x{size}, fp32, {args.threads} threads, '
          f'{rounds} paired rounds (load average {load_before})')
    for name in models:
        print(f'  {name:10s} inference {report["inference_median_ms"][name]:8.1f} ms  train '
              f'step {report["train_step_median_ms"][name]:8.1f} ms  max rel diff '
              f'{diff[name]:.1e}')
    print(f'  inference ratios {report["inference_ratio"]}, training-step ratios '
          f'{report["train_step_ratio"]}')
    write_report(report, args.out or os.path.join(ROOT, 'benchmarks', 'results',
                                                  f'{args.family}.json'))
    return report


if __name__ == '__main__':
    main()
