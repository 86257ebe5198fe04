"""PVTv2 / PVT v1: ours vs mmdet's PyramidVisionTransformer(V2) and timm's pvt_v2, inference and a
training step, in one run.

Same network, same weights: ours randomized, loaded into mmdet's (same keys) and, through the
converter (``revert_timm_pvt_v2``), into timm's; the outputs are checked against mmdet's before
timing (timm's patch-embedding norms use eps 1e-5, so its difference is reported, not asserted).
Runs are paired: each round calls every model once in a rotating order, so drifts of a shared
machine hit all alike. Reported per model: median latency, the median of the per-round ratios
ours/mmdet and ours/timm with quartiles, the ratio of minimums. Training step: forward, a scalar
loss on the last map, backward, gradients dropped; train mode, drop path 0.1 (mmdet's default).
timm is timed on ``forward_features`` (the four stages, no head), as ours.

Needs mmdet (the downstream venv; timm is optional there):

    .venv-downstream/bin/python benchmarks/bench_pvt.py [--quick] [--archs v2-b0 v2-b2 v1-t]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (AUTOCAST, LastOutput, TrainStep, add_device_arguments,  # noqa: E402
                      check_device_arguments, per_round_ratios, randomize_, ratio_summary,
                      synced, timed_rounds, write_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_models(arch: str, device: torch.device) -> dict:
    """``{'ours', 'mmdet'[, 'timm']}`` with identical weights. ``arch``: ``'v2-b0'``..,
    ``'v1-t'``.."""
    import mmdet.models  # noqa: F401 - registers
    from mmdet.registry import MODELS

    from mmbackbones.models.backbones.pvt import (PyramidVisionTransformer,
                                                  PyramidVisionTransformerV2)
    version, name = arch.split('-')
    cls = PyramidVisionTransformerV2 if version == 'v2' else PyramidVisionTransformer
    ours = cls(arch=name)
    state = randomize_(ours)
    embed, layers, mlp = cls.arch_settings[name]
    mmdet = MODELS.build(dict(type=cls.__name__, _scope_='mmdet', embed_dims=embed,
                              num_layers=list(layers), mlp_ratios=list(mlp)))
    mmdet.load_state_dict(state)
    models = {'ours': ours, 'mmdet': mmdet}
    if version == 'v2':
        try:
            import timm
        except ImportError:
            timm = None
        if timm is not None:
            from mmbackbones.checkpoint.converters.timm_pvt_v2 import revert_timm_pvt_v2
            reference = timm.create_model(f'pvt_v2_{name}', pretrained=False,
                                          drop_path_rate=0.1)
            reference.load_state_dict(revert_timm_pvt_v2(state), strict=False)
            models['timm'] = LastOutput(reference, 'forward_features')
    return {k: m.to(device) for k, m in models.items()}


def run_models(models: dict, host: str, args, device: torch.device) -> dict:
    """Equality check, then paired inference and training-step rounds; ratios of ours to every
    other model."""
    amp = AUTOCAST[args.autocast]
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    for m in models.values():
        m.eval()
    with torch.inference_mode():
        out = models['ours'](x)
        diffs = {}
        for name, model in models.items():
            if name == 'ours':
                continue
            ref = model(x)
            ref = ref if isinstance(ref, (tuple, list)) else [ref]
            pairs = list(zip(out[-len(ref):], ref))
            if any(o.shape != r.shape for o, r in pairs):
                continue  # another output convention (timm's Twins: normed tokens)
            diffs[name] = max(float((o - r).abs().max() / r.abs().max()) for o, r in pairs)
        calls = {k: synced(m, device, amp) for k, m in models.items()}
        infer = timed_rounds(calls, x, args.rounds, args.warmup, time.perf_counter)
    for m in models.values():
        m.train()
    steps = {k: synced(TrainStep(m, autocast=amp), device) for k, m in models.items()}
    train = timed_rounds(steps, x, args.rounds, args.warmup, time.perf_counter)
    assert diffs[host] < 1e-4, diffs
    result = dict(max_rel_diff_eval=diffs)
    for label, times in (('inference', infer), ('train_step', train)):
        entry = dict(median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in times.items()},
                     min_ms={k: round(min(t) * 1e3, 2) for k, t in times.items()})
        for other in times:
            if other != 'ours':
                entry[f'ratio_ours_vs_{other}'] = ratio_summary(
                    per_round_ratios(times, 'ours', other))
                entry[f'ratio_of_minimums_vs_{other}'] = round(
                    min(times['ours']) / min(times[other]), 4)
        result[label] = entry
    return result


def print_results(title: str, results: dict) -> None:
    for arch, res in results.items():
        for label in ('inference', 'train_step'):
            r = res[label]
            cells = [f'ours {r["median_ms"]["ours"]:8.1f} ms']
            for other in r['median_ms']:
                if other == 'ours':
                    continue
                q = r[f'ratio_ours_vs_{other}']
                cells.append(f'{other} {r["median_ms"][other]:8.1f} ms  ours/{other} '
                             f'{q["median"]:.3f} [{q["q1"]:.3f}, {q["q3"]:.3f}]')
            print(f'  {title} {arch} {label:10s} ' + '  '.join(cells))
        print(f'  {title} {arch} max rel diff (eval) ' + ', '.join(
            f'{k} {v:.1e}' for k, v in res['max_rel_diff_eval'].items()))


def parse(argv, doc: str, default_archs, out: str, out_option: str = '--out'):
    """The shared command line; the report goes where ``out_option`` (run_all's) says."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 128 px, 3 rounds')
    parser.add_argument('--archs', nargs='+', default=default_archs)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument(out_option, dest='out',
                        default=os.path.join(ROOT, 'benchmarks', 'results', out))
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    check_device_arguments(parser, args)
    args.batch = args.batch or (1 if args.quick else 2)
    args.size = args.size or (128 if args.quick else 224)
    args.rounds = args.rounds or (3 if args.quick else 15)
    args.warmup = 1 if args.quick else 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def report_of(name: str, args, results: dict, load_before) -> dict:
    return dict(
        benchmark=name, batch=args.batch, size=args.size, device=args.device,
        autocast=args.autocast, threads=args.threads, clock='wall', rounds=args.rounds,
        quick=args.quick, torch=torch.__version__, machine=platform.machine(),
        cpu_count=os.cpu_count(), load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        results=results)


def main(argv=None) -> dict:
    args = parse(argv, __doc__, ['v2-b0', 'v2-b2', 'v1-t'], 'pvt.json', out_option='--out')
    device = torch.device(args.device)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    results = {arch: run_models(build_models(arch, device), 'mmdet', args, device)
               for arch in args.archs}
    report = report_of('pvt', args, results, load_before)
    print(f'PVT {args.archs}, batch {args.batch}, {args.size}x{args.size}, {args.device} '
          f'{args.autocast}, {args.threads} threads, {args.rounds} paired rounds (load average '
          f'{load_before} -> {report["load_average_after"]})')
    print_results('PVT', results)
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
