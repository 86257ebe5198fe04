"""CSPNet and RegNet CPU latency: ours vs the same model in timm (and our fused deploy path).

Pairs (the timm model is the same network: same layers, same weights, outputs checked equal):

    cspresnext50  CSPResNeXt(depth=50)            timm cspresnext50
    cspresnet50   CSPResNet(depth=50)             timm cspresnet50
    cspdarknet53  CSPDarkNet(depth=53)            timm cspdarknet53
    regnetx-4.0gf RegNet('regnetx_4.0gf')         timm regnetx_040
    regnetx-200mf RegNet(<timm regnetx_002 arch>) timm regnetx_002

Each model returns its last feature map (ours: ``out_indices`` the last stage; timm:
``forward_features``). Weights: ours randomized (realistic BN statistics), copied into timm
(RegNet through ``checkpoint.converters.timm_regnet``; the CSP nets have the same parameter
order and shapes in both, checked tensor by tensor). ``ours_fused`` is ``model.fuse()`` (BN folded
into the convs), a deploy path, not part of the headline ratio.

Runs are paired: in each round every model of a pair runs once, in a rotating order, so drifts of
a shared machine hit all alike. Reported: median latency per model, the median of the per-round
ratios ours/timm (the headline, target <= 1.00), the ratio of medians and the ratio of minimums
(the least-disturbed runs; the steadiest figure when other jobs share the cores).

    python benchmarks/bench_cspnet_regnet.py [--quick] [--threads 2] [--only cspresnext50,...]
    python benchmarks/bench_cspnet_regnet.py --threads 1 --clock cpu --out ...  # shared machine
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (LastOutput, per_round_ratios, randomize_, timed_rounds, write_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PAIRS = ('cspresnext50', 'cspresnet50', 'cspdarknet53', 'regnetx-4.0gf', 'regnetx-200mf')
QUICK_PAIRS = ('cspresnext50', 'regnetx-200mf')


def build_pair(name: str):
    """``(ours, timm_model, ours_fused)``: eval mode, identical weights."""
    import timm

    from mmbackbones.checkpoint.converters.timm_regnet import (TIMM_REGNETX_ARCHS,
                                                               convert_timm_regnet)
    from mmbackbones.models.backbones.cspnet import CSPDarkNet, CSPResNet, CSPResNeXt
    from mmbackbones.models.backbones.regnet import RegNet

    def make_ours():
        if name == 'cspresnext50':
            return CSPResNeXt(depth=50)
        if name == 'cspresnet50':
            return CSPResNet(depth=50)
        if name == 'cspdarknet53':
            return CSPDarkNet(depth=53)
        if name == 'regnetx-4.0gf':
            return RegNet('regnetx_4.0gf')
        return RegNet(TIMM_REGNETX_ARCHS['regnetx_002'])

    timm_name = {'regnetx-4.0gf': 'regnetx_040', 'regnetx-200mf': 'regnetx_002'}.get(name, name)
    ours = make_ours().eval()
    randomize_(ours)
    theirs = timm.create_model(timm_name, pretrained=False).eval()
    if name.startswith('regnet'):
        # timm -> ours is the converter's direction: check it maps timm's keys onto ours
        # one to one, then load our weights under timm's names.
        timm_keys = [k for k in theirs.state_dict() if not k.startswith('head.')]
        mapping = dict(zip(convert_timm_regnet(dict.fromkeys(timm_keys)), timm_keys))
        state = {mapping[k]: v for k, v in ours.state_dict().items()}
    else:
        timm_keys = [k for k in theirs.state_dict() if not k.startswith('head.')]
        ours_items = list(ours.state_dict().items())
        if len(timm_keys) != len(ours_items):
            raise RuntimeError(f'{name}: {len(timm_keys)} timm tensors vs {len(ours_items)}')
        state = {}
        for tk, (ok, value) in zip(timm_keys, ours_items):
            if theirs.state_dict()[tk].shape != value.shape:
                raise RuntimeError(f'{name}: {tk} {tuple(theirs.state_dict()[tk].shape)} vs '
                                   f'{ok} {tuple(value.shape)}')
            state[tk] = value
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith('head.')]:
        raise RuntimeError(f'{name}: timm weights did not load ({missing}, {unexpected})')
    fused = make_ours().eval()
    fused.load_state_dict(ours.state_dict())
    fused.fuse()
    return LastOutput(ours), LastOutput(theirs, 'forward_features'), LastOutput(fused), timm_name


def run_pair(name, batch, size, rounds, warmup, clock=time.perf_counter):
    ours, theirs, fused, timm_name = build_pair(name)
    x = torch.randn(batch, 3, size, size)
    models = {'ours': ours, 'timm': theirs, 'ours_fused': fused}
    with torch.inference_mode():
        ref = theirs(x)
        diff = {k: float((m(x) - ref).abs().max() / ref.abs().max()) for k, m in models.items()}
        times = timed_rounds(models, x, rounds, warmup, clock)
        ratios = per_round_ratios(times, 'ours', 'timm')
    med = {k: statistics.median(t) for k, t in times.items()}
    return dict(
        timm_model=timm_name,
        median_ms={k: round(v * 1e3, 2) for k, v in med.items()},
        min_ms={k: round(min(t) * 1e3, 2) for k, t in times.items()},
        ratio_ours_vs_timm=round(statistics.median(ratios), 4),
        ratio_of_medians=round(med['ours'] / med['timm'], 4),
        # the least-disturbed run of each: robust when other jobs share the cores
        ratio_of_minimums=round(min(times['ours']) / min(times['timm']), 4),
        ratio_fused_vs_timm=round(med['ours_fused'] / med['timm'], 4),
        max_rel_diff_vs_timm={k: v for k, v in diff.items() if k != 'timm'})


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='two pairs, batch 1, 160 px, 4 rounds (smoke run)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='cpu: CPU time of the calling thread (with --threads 1 it is all of '
                             'the work), insensitive to waiting for cores other jobs hold')
    parser.add_argument('--only', default=None, help=f'comma-separated subset of {PAIRS}')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'cspnet_regnet.json'))
    args = parser.parse_args(argv)
    pairs = args.only.split(',') if args.only else (QUICK_PAIRS if args.quick else PAIRS)
    unknown = [p for p in pairs if p not in PAIRS]
    if unknown:
        parser.error(f'unknown pair(s) {unknown}; choose from {PAIRS}')
    batch = args.batch or (1 if args.quick else 4)
    size = args.size or (160 if args.quick else 224)
    rounds = args.rounds or (4 if args.quick else 15)
    warmup = 1 if args.quick else 2
    if args.clock == 'cpu' and args.threads != 1:
        parser.error('--clock cpu counts the calling thread only: use it with --threads 1')
    clock = time.thread_time if args.clock == 'cpu' else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    results = {}
    for name in pairs:
        results[name] = run_pair(name, batch, size, rounds, warmup, clock)
        print(f'{name}: ours/timm {results[name]["ratio_ours_vs_timm"]:.3f}', flush=True)
    report = dict(
        benchmark='cspnet_regnet', batch=batch, size=size, dtype='float32', device='cpu',
        threads=args.threads, clock=args.clock, rounds=rounds, quick=args.quick,
        torch=torch.__version__,
        machine=platform.machine(), cpu_count=os.cpu_count(), load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        pairs=results)

    print(f'batch {batch}, {size}x{size}, fp32, {args.threads} threads, {args.clock} clock, '
          f'{rounds} paired rounds '
          f'(load average {load_before})')
    print(f'{"pair":15s} {"timm model":14s} {"ours ms":>9s} {"timm ms":>9s} {"fused ms":>9s} '
          f'{"ours/timm":>9s} {"min ratio":>9s} {"fused/timm":>10s} {"max rel diff":>12s}')
    for name, res in results.items():
        ms = res['median_ms']
        print(f'{name:15s} {res["timm_model"]:14s} {ms["ours"]:9.1f} {ms["timm"]:9.1f} '
              f'{ms["ours_fused"]:9.1f} {res["ratio_ours_vs_timm"]:9.3f} '
              f'{res["ratio_of_minimums"]:9.3f} '
              f'{res["ratio_fused_vs_timm"]:10.3f} {res["max_rel_diff_vs_timm"]["ours"]:12.1e}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
