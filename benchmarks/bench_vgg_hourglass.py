"""VGG-16, SSD's VGG-16 and Hourglass: ours vs the upstream classes (mmpretrain's VGG, mmdet's
SSDVGG and HourglassNet) and timm's ``vgg16`` features, inference and a training step, in one
run (the mmdet cases need .venv-downstream; without mmdet only VGG-16 runs).

Every pair has the same weights (ours randomized with realistic BN statistics and loaded into
the others; timm through ``convert --to timm``) and
the outputs are checked equal before timing. Runs are paired: each round calls every model once
in a rotating order, so drifts of a shared machine hit all alike. Reported per case: median
latency per model and the median of the per-round ratios ours/upstream and ours/timm with their
spread (target <= 1.00), for inference and for a training step (forward, a scalar loss on the
last output, backward).

    python benchmarks/bench_vgg_hourglass.py [--quick] [--threads 2] [--size 96]
"""
import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (LastOutput, TrainStep, per_round_ratios, randomize_,  # noqa: E402
                      ratio_summary, timed_rounds, write_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def vgg_models() -> dict:
    import timm
    from mmpretrain.models.backbones import VGG as Upstream

    from mmbackbones.checkpoint.convert import to_native
    from mmbackbones.models.backbones.vgg import VGG
    ours = VGG(depth=16, norm_cfg=dict(type='BN'))
    state = randomize_(ours)
    upstream = Upstream(depth=16, norm_cfg=dict(type='BN'))
    upstream.load_state_dict(state)
    timm_model = timm.create_model('vgg16_bn', pretrained=False)
    timm_model.load_state_dict(to_native(state, 'timm', 'VGG'), strict=False)  # head at init
    return {'ours': ours, 'upstream': upstream,
            'timm': LastOutput(timm_model, 'forward_features')}


def ssd_models() -> dict:
    from mmdet.models.backbones import SSDVGG as Upstream

    from mmbackbones.models.backbones.vgg import SSDVGG
    ours = SSDVGG(depth=16)
    state = randomize_(ours)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        upstream = Upstream(depth=16)
    upstream.load_state_dict(state)
    return {'ours': ours, 'upstream': upstream}


def hourglass_models() -> dict:
    from mmdet.models.backbones import HourglassNet as Upstream

    from mmbackbones.models.backbones.hourglass import HourglassNet
    ours = HourglassNet(num_stacks=1)
    state = randomize_(ours)
    upstream = Upstream(num_stacks=1)
    upstream.load_state_dict(state, strict=False)  # mmdet's unused inters.0 keeps its init
    return {'ours': ours, 'upstream': upstream}


CASES = {'vgg16_bn': vgg_models, 'ssd_vgg16': ssd_models, 'hourglass52': hourglass_models}


def _last(out):
    return out[-1] if isinstance(out, (tuple, list)) else out


def run_case(name: str, models: dict, x, rounds: int, warmup: int) -> dict:
    for model in models.values():
        model.eval()
    with torch.inference_mode():
        ref = _last(models['upstream'](x))
        diff = {k: float((_last(m(x)) - ref).abs().max() / ref.abs().max())
                for k, m in models.items()}
        infer = timed_rounds(models, x, rounds, warmup, time.perf_counter)
    for model in models.values():
        model.train()
    train = timed_rounds({k: TrainStep(m) for k, m in models.items()}, x, rounds, 1,
                         time.perf_counter)
    result = dict(max_rel_diff_vs_upstream=diff)
    for label, times in (('inference', infer), ('train_step', train)):
        result[label] = dict(
            median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in times.items()},
            ratio_vs_upstream=ratio_summary(per_round_ratios(times, 'ours', 'upstream')))
        if 'timm' in times:
            result[label]['ratio_vs_timm'] = ratio_summary(per_round_ratios(times, 'ours',
                                                                            'timm'))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='64 px, 3 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'vgg_hourglass.json'))
    args = parser.parse_args(argv)
    try:
        import mmdet.models  # noqa: F401
    except ImportError:  # the main venv: mmpretrain and timm only
        dropped = [c for c in args.cases if c != 'vgg16_bn']
        args.cases = [c for c in args.cases if c == 'vgg16_bn']
        if dropped:
            print(f'mmdet (with the full mmcv) is not installed: {", ".join(dropped)} left out '
                  f'(run with .venv-downstream\'s python for them)')
    size = args.size or (64 if args.quick else 128)
    rounds = args.rounds or (3 if args.quick else 7)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    report = dict(benchmark='vgg_hourglass', batch=args.batch, size=size, dtype='float32',
                  device='cpu', threads=args.threads, clock='wall', rounds=rounds,
                  torch=torch.__version__, machine=platform.machine(),
                  cpu_count=os.cpu_count(), load_average_before=load_before, cases={})
    print(f'batch {args.batch}, {size}x{size}, fp32, {args.threads} threads, {rounds} paired '
          f'rounds (load average {load_before})')
    for name in args.cases:
        result = run_case(name, CASES[name](), x, rounds, 1)
        report['cases'][name] = result
        for label in ('inference', 'train_step'):
            r = result[label]
            timm = f", ours/timm {r['ratio_vs_timm']['median']:.3f}" if 'ratio_vs_timm' in r \
                else ''
            print(f'  {name:12s} {label:10s} {r["median_ms"]} ours/upstream '
                  f'{r["ratio_vs_upstream"]["median"]:.3f}{timm}')
        print(f'  {name:12s} max rel diff {result["max_rel_diff_vs_upstream"]}')
    report['load_average_after'] = os.getloadavg() if hasattr(os, 'getloadavg') else None
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
