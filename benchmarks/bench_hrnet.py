"""HRNet-W18 CPU inference latency: ours vs mmpretrain's HRNet and timm's, in one run.

The three are the same network with the same weights (ours randomized with realistic BN
statistics, loaded into mmpretrain's HRNet, whose keys are ours, and into timm's
``hrnet_w18`` ``features_only`` model with ``feature_location=''``, whose backbone keys are ours
too); every model returns the four branch maps, and the outputs are checked equal before timing.
``ours_fused`` is ``model.fuse()`` (BN folded into the convs), a deploy path, not part of the
headline ratios.

Runs are paired: each round calls every model once in a rotating order, so drifts of a shared
machine hit all alike. Reported: median latency per model, the medians of the per-round ratios
ours/mmpretrain and ours/timm (the headline, target <= 1.00) and the ratios of minimums.

    python benchmarks/bench_hrnet.py [--quick] [--threads 2] [--batch 4] [--size 224]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import per_round_ratios, randomize_, timed_rounds, write_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_models(arch: str = 'w18') -> dict:
    """``{'ours', 'mmpretrain', 'timm', 'ours_fused'}``: eval mode, identical weights."""
    import timm
    from mmpretrain.models.backbones import HRNet as MMPretrainHRNet

    from mmbackbones.models.backbones.hrnet import HRNet

    ours = HRNet(arch=arch).eval()
    state = randomize_(ours)
    theirs = MMPretrainHRNet(arch=arch)
    theirs.load_state_dict(state)
    theirs.eval()
    timm_model = timm.create_model(f'hrnet_{arch}', features_only=True, feature_location='',
                                   out_indices=(1, 2, 3, 4)).eval()
    timm_model.load_state_dict(state)  # strict: the headless timm model has exactly our keys
    fused = HRNet(arch=arch).eval()
    fused.load_state_dict(state)
    fused.fuse()
    return {'ours': ours, 'mmpretrain': theirs, 'timm': timm_model, 'ours_fused': fused}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 160 px, 4 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--arch', default='w18')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'hrnet.json'))
    args = parser.parse_args(argv)
    batch = args.batch or (1 if args.quick else 4)
    size = args.size or (160 if args.quick else 224)
    rounds = args.rounds or (4 if args.quick else 15)
    warmup = 1 if args.quick else 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = build_models(args.arch)
    x = torch.randn(batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    with torch.inference_mode():
        ref = models['mmpretrain'](x)
        diff = {}
        for name, model in models.items():
            out = model(x)
            diff[name] = max(float((o - r).abs().max() / r.abs().max())
                             for o, r in zip(out, ref))
        times = timed_rounds(models, x, rounds, warmup, time.perf_counter)
    med = {k: statistics.median(t) for k, t in times.items()}
    report = dict(
        benchmark='hrnet', arch=args.arch, batch=batch, size=size, dtype='float32',
        device='cpu', threads=args.threads, clock='wall', rounds=rounds, quick=args.quick,
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        median_ms={k: round(v * 1e3, 2) for k, v in med.items()},
        min_ms={k: round(min(t) * 1e3, 2) for k, t in times.items()},
        ratio_ours_vs_mmpretrain=round(statistics.median(
            per_round_ratios(times, 'ours', 'mmpretrain')), 4),
        ratio_ours_vs_timm=round(statistics.median(per_round_ratios(times, 'ours', 'timm')), 4),
        ratio_of_minimums_vs_mmpretrain=round(min(times['ours']) / min(times['mmpretrain']), 4),
        ratio_of_minimums_vs_timm=round(min(times['ours']) / min(times['timm']), 4),
        ratio_fused_vs_timm=round(med['ours_fused'] / med['timm'], 4),
        max_rel_diff_vs_mmpretrain=diff)
    print(f'HRNet-{args.arch}, batch {batch}, {size}x{size}, fp32, {args.threads} threads, '
          f'{rounds} paired rounds (load average {load_before})')
    for name in models:
        print(f'  {name:11s} median {report["median_ms"][name]:8.1f} ms  min '
              f'{report["min_ms"][name]:8.1f} ms  max rel diff {diff[name]:.1e}')
    print(f'  ours/mmpretrain {report["ratio_ours_vs_mmpretrain"]:.3f} (minimums '
          f'{report["ratio_of_minimums_vs_mmpretrain"]:.3f}), ours/timm '
          f'{report["ratio_ours_vs_timm"]:.3f} (minimums {report["ratio_of_minimums_vs_timm"]:.3f}'
          f'), fused/timm {report["ratio_fused_vs_timm"]:.3f}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
