"""YOLO-lineage CSP backbones, CPU: ours vs mmdet 3.3's classes (and timm's darknet53), in one run.

Three networks, each with identical weights in every implementation and checked equal before
timing: YOLOX-s's ``CSPDarknet`` (ours ``YOLOXCSPDarknet``), RTMDet-s's ``CSPNeXt`` and
Darknet-53 (``Darknet``; timm's ``darknet53`` ``features_only`` model gets the same weights through
``converters.timm_darknet`` and, to compute the same function, mmdet's LeakyReLU slope 0.1).
Timed: inference (eval, ``inference_mode``) and one training step (forward, loss on the last
output, backward). Paired rounds in a rotating order; reported are the medians of the
per-round ratios ours/mmdet and ours/timm (target <= 1.00) with their quartiles.

Needs the downstream tier (mmdet with the full mmcv):

    /path/to/.venv-downstream/bin/python benchmarks/bench_yolo_csp.py [--quick] [--threads 2]
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
from benchlib import (TrainStep, per_round_ratios, randomize_, ratio_summary,  # noqa: E402
                      timed_rounds, write_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

NETWORKS = {
    'yolox-s': ('CSPDarknet', dict(deepen_factor=0.33, widen_factor=0.5)),
    'rtmdet-s': ('CSPNeXt', dict(deepen_factor=0.33, widen_factor=0.5)),
    'darknet53': ('Darknet', dict(norm_eval=False)),
}


def build(name: str) -> dict:
    """``{'ours', 'mmdet'[, 'timm']}`` with identical weights."""
    import mmdet.models  # noqa: F401 - registers
    from mmdet.registry import MODELS

    from mmbackbones import build_backbone
    kind, kwargs = NETWORKS[name]
    ours = build_backbone(dict(type=f'mmbackbones.mmdet.{kind}', **kwargs))
    state = randomize_(ours)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        theirs = MODELS.build(dict(type=kind, _scope_='mmdet', **kwargs))
    theirs.load_state_dict(state)
    models = {'ours': ours, 'mmdet': theirs}
    if kind == 'Darknet':
        import timm

        from mmbackbones.checkpoint.converters.timm_darknet import revert_timm_darknet
        timm_model = timm.create_model('darknet53', features_only=True, out_indices=(3, 4, 5),
                                       act_layer=lambda inplace=True: torch.nn.LeakyReLU(
                                           0.1, inplace=inplace))
        timm_state = {k.replace('stem.conv1', 'stem_conv1').replace('stages.', 'stages_', 1):
                      v for k, v in revert_timm_darknet(state).items()}
        timm_model.load_state_dict(timm_state)
        models['timm'] = timm_model
    return models


def run(name: str, args) -> dict:
    models = build(name)
    x = torch.randn(args.batch, 3, args.size, args.size)
    for m in models.values():
        m.eval()
    with torch.inference_mode():
        ref = models['mmdet'](x)
        diff = {k: max(float((o - r).abs().max() / r.abs().max()) for o, r in zip(m(x), ref))
                for k, m in models.items()}
        infer = timed_rounds(models, x, args.rounds, args.warmup, time.perf_counter)
    for m in models.values():
        m.train()
    steps = {k: TrainStep(m) for k, m in models.items()}
    train = timed_rounds(steps, x, args.rounds, args.warmup, time.perf_counter)
    result = dict(max_rel_diff_eval=diff)
    for label, times in (('inference', infer), ('train_step', train)):
        result[label] = dict(
            median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in times.items()},
            min_ms={k: round(min(t) * 1e3, 2) for k, t in times.items()},
            **{f'ratio_ours_vs_{other}': ratio_summary(per_round_ratios(times, 'ours', other))
               for other in models if other != 'ours'})
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 160 px, 5 rounds')
    parser.add_argument('--networks', nargs='+', default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'yolo_csp.json'))
    args = parser.parse_args(argv)
    try:
        import mmdet  # noqa: F401
    except ImportError:
        parser.error('needs mmdet 3.3 (with the full mmcv): run it with the downstream tier\'s '
                     'python (.venv-downstream)')
    args.batch = args.batch or (1 if args.quick else 2)
    args.size = args.size or (160 if args.quick else 320)
    args.rounds = args.rounds or (5 if args.quick else 15)
    args.warmup = 1 if args.quick else 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    results = {name: run(name, args) for name in args.networks}
    report = dict(
        benchmark='yolo_csp', batch=args.batch, size=args.size, device='cpu', dtype='float32',
        threads=args.threads, clock='wall', rounds=args.rounds, quick=args.quick,
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        results=results)
    print(f'YOLO CSP backbones, batch {args.batch}, {args.size}x{args.size}, fp32, '
          f'{args.threads} threads, {args.rounds} paired rounds (load average {load_before} -> '
          f'{report["load_average_after"]})')
    for name, res in results.items():
        for label in ('inference', 'train_step'):
            r = res[label]
            ratios = '  '.join(
                f'ours/{k[len("ratio_ours_vs_"):]} {q["median"]:.3f} [{q["q1"]:.3f}, '
                f'{q["q3"]:.3f}]' for k, q in r.items() if k.startswith('ratio_ours_vs_'))
            times = '  '.join(f'{k} {v:7.1f} ms' for k, v in r['median_ms'].items())
            print(f'  {name:9s} {label:10s} {times}  {ratios}')
        print(f'  {name:9s} max rel diff (eval) ' + ', '.join(
            f'{k} {v:.1e}' for k, v in res['max_rel_diff_eval'].items()))
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
