"""MiT-B0/B2 (SegFormer encoders): ours vs mmseg's MixVisionTransformer, inference and a training
step, in one run.

Same network, same weights (ours randomized, loaded into mmseg's, whose keys are ours); the four
outputs are checked equal before timing. Runs are paired: each round calls both models once in
a rotating order, so drifts of a shared machine hit both alike. Reported per arch: median
latency, the median of the per-round ratios ours/mmseg with its spread (quartiles), the ratio of
minimums. The training step is forward, a scalar loss on the last map, backward, gradients
dropped (no optimizer), both models in train mode with mmseg's config rates (drop path 0.1).

Needs mmseg (the downstream venv):

    .venv-downstream/bin/python benchmarks/bench_mit.py [--quick] [--archs b0 b2] [--size 512]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (TrainStep, add_device_arguments, check_device_arguments,  # noqa: E402
                      per_round_ratios, randomize_, ratio_summary, synced, timed_rounds,
                      write_report, AUTOCAST)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_pair(arch: str, device: torch.device, drop_path_rate: float = 0.1) -> dict:
    """``{'ours', 'mmseg'}`` with identical weights (mmseg built from the same arch values)."""
    import mmseg.models  # noqa: F401 - registers
    from mmseg.models.backbones.mit import MixVisionTransformer as MMSegMiT

    from mmbackbones.models.backbones.mit import ARCH_SETTINGS, MixVisionTransformer

    embed, layers, heads = ARCH_SETTINGS[arch]
    ours = MixVisionTransformer(arch=arch, drop_path_rate=drop_path_rate)
    state = randomize_(ours)
    theirs = MMSegMiT(embed_dims=embed, num_layers=list(layers), num_heads=list(heads),
                      drop_path_rate=drop_path_rate)
    theirs.load_state_dict(state)
    return {'ours': ours.to(device), 'mmseg': theirs.to(device)}


def run_arch(arch: str, args, device: torch.device) -> dict:
    amp = AUTOCAST[args.autocast]
    models = build_pair(arch, device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    for m in models.values():
        m.eval()
    with torch.inference_mode():
        ref = models['mmseg'](x)
        out = models['ours'](x)
        diff = max(float((o - r).abs().max() / r.abs().max()) for o, r in zip(out, ref))
        calls = {k: synced(m, device, amp) for k, m in models.items()}
        infer = timed_rounds(calls, x, args.rounds, args.warmup, time.perf_counter)
    for m in models.values():
        m.train()
    steps = {k: synced(TrainStep(m, autocast=amp), device) for k, m in models.items()}
    train = timed_rounds(steps, x, args.rounds, args.warmup, time.perf_counter)
    result = dict(max_rel_diff_eval=diff)
    for label, times in (('inference', infer), ('train_step', train)):
        result[label] = dict(
            median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in times.items()},
            min_ms={k: round(min(t) * 1e3, 2) for k, t in times.items()},
            ratio_ours_vs_mmseg=ratio_summary(per_round_ratios(times, 'ours', 'mmseg')),
            ratio_of_minimums=round(min(times['ours']) / min(times['mmseg']), 4))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 256 px, 5 rounds')
    parser.add_argument('--archs', nargs='+', default=['b0', 'b2'])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results', 'mit.json'))
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    check_device_arguments(parser, args)
    args.batch = args.batch or (1 if args.quick else 2)
    args.size = args.size or (256 if args.quick else 512)
    args.rounds = args.rounds or (5 if args.quick else 15)
    args.warmup = 1 if args.quick else 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    results = {arch: run_arch(arch, args, device) for arch in args.archs}
    report = dict(
        benchmark='mit', batch=args.batch, size=args.size, device=args.device,
        autocast=args.autocast, threads=args.threads, clock='wall', rounds=args.rounds,
        quick=args.quick, torch=torch.__version__, machine=platform.machine(),
        cpu_count=os.cpu_count(), load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        results=results)
    print(f'MiT {args.archs}, batch {args.batch}, {args.size}x{args.size}, {args.device} '
          f'{args.autocast}, {args.threads} threads, {args.rounds} paired rounds (load average '
          f'{load_before} -> {report["load_average_after"]})')
    for arch, res in results.items():
        for label in ('inference', 'train_step'):
            r = res[label]
            q = r['ratio_ours_vs_mmseg']
            print(f'  MiT-{arch.upper()} {label:10s} ours {r["median_ms"]["ours"]:8.1f} ms  '
                  f'mmseg {r["median_ms"]["mmseg"]:8.1f} ms  ours/mmseg {q["median"]:.3f} '
                  f'[{q["q1"]:.3f}, {q["q3"]:.3f}]  minimums {r["ratio_of_minimums"]:.3f}')
        print(f'  MiT-{arch.upper()} max rel diff (eval) {res["max_rel_diff_eval"]:.1e}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
