"""DetectoRS ResNet-50 (ConvAWS + SAC in stages 2-4, as mmdet's detectors/ configs; ``--family
trident``: TridentNet ResNet-50, caffe C4) on the CPU: inference and one training step, ours
(``mmbackbones.mmdet.<Type>``) vs mmdet 3.3's own class, in one run. Needs mmdet and the full
mmcv (run it with .venv-downstream's python). timm has neither network.

Both are the same network with the same weights (ours randomised, AWS statistics set to the
weights' own, loaded into mmdet's module, whose keys are ours); the outputs are checked equal
before timing. ``--deform``: SAC with deformable convs (mmcv's compiled op in both). The trident
inference runs one branch (``test_branch_idx=1``), the training step all three. Rounds are
paired and rotated (``benchlib.timed_rounds``); reported: medians and the median per-round
ratio ours/mmdet (target <= 1.00).

    python benchmarks/bench_detectors.py [--family detectors|trident] [--deform] [--quick]
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
from benchlib import (TrainStep, per_round_ratios, randomize_, timed_rounds,  # noqa: E402
                      write_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _aws_stats_(model) -> None:
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, 'weight_gamma'):
                flat = m.weight.flatten(1)
                m.weight_gamma.copy_(flat.std(1).view(-1, 1, 1, 1))
                m.weight_beta.copy_(flat.mean(1).view(-1, 1, 1, 1))


def build_models(family: str, deform: bool) -> dict:
    """``{'ours', 'mmdet'}``: identical weights, eval mode."""
    import mmdet.models  # noqa: F401 - registers mmdet's classes
    from mmdet.registry import MODELS

    from mmbackbones.compat import MMDetDetectoRS_ResNet, MMDetTridentResNet
    if family == 'detectors':
        kwargs = dict(depth=50, conv_cfg=dict(type='ConvAWS'), norm_eval=False,
                      sac=dict(type='SAC', use_deform=deform),
                      stage_with_sac=(False, True, True, True))
        ours, kind = MMDetDetectoRS_ResNet(**kwargs), 'DetectoRS_ResNet'
    else:
        kwargs = dict(depth=50, num_branch=3, test_branch_idx=1, trident_dilations=(1, 2, 3),
                      num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ),
                      style='caffe', norm_eval=False)
        ours, kind = MMDetTridentResNet(**kwargs), 'TridentResNet'
    randomize_(ours)
    _aws_stats_(ours)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        theirs = MODELS.build(dict(type=kind, _scope_='mmdet', **kwargs))
    theirs.load_state_dict(ours.state_dict())
    ours.eval()
    theirs.eval()  # (mmdet's ResNet.train() returns None)
    return {'ours': ours, 'mmdet': theirs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', choices=('detectors', 'trident'), default='detectors')
    parser.add_argument('--deform', action='store_true', help='deformable SAC (full mmcv)')
    parser.add_argument('--quick', action='store_true', help='batch 2, 128 px, 4 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    batch = args.batch or 2
    size = args.size or (128 if args.quick else 224)
    rounds = args.rounds or (4 if args.quick else 11)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = build_models(args.family, args.deform)
    x = torch.randn(batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    with torch.inference_mode():
        ref = models['mmdet'](x)
        diff = max(float((o - r).abs().max() / r.abs().max())
                   for o, r in zip(models['ours'](x), ref))
        infer = timed_rounds(models, x, rounds, 1, time.perf_counter)
    for model in models.values():
        model.train()
    steps = {name: TrainStep(model) for name, model in models.items()}
    train = timed_rounds(steps, x, rounds, 1, time.perf_counter)
    name = args.family + ('-deform' if args.deform else '')
    report = dict(
        benchmark=name, batch=batch, size=size, dtype='float32', device='cpu',
        threads=args.threads, clock='wall', rounds=rounds, quick=args.quick,
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        inference_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in infer.items()},
        train_step_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in train.items()},
        inference_ratio=dict(ours_vs_mmdet=round(statistics.median(
            per_round_ratios(infer, 'ours', 'mmdet')), 4)),
        train_step_ratio=dict(ours_vs_mmdet=round(statistics.median(
            per_round_ratios(train, 'ours', 'mmdet')), 4)),
        max_rel_diff_vs_mmdet=diff)
    print(f'{name} ResNet-50, batch {batch}, {size}x{size}, fp32, {args.threads} threads, '
          f'{rounds} paired rounds (load average {load_before}); max rel diff {diff:.1e}')
    for key in models:
        print(f'  {key:6s} inference {report["inference_median_ms"][key]:8.1f} ms  train step '
              f'{report["train_step_median_ms"][key]:8.1f} ms')
    print(f'  ours/mmdet: inference {report["inference_ratio"]["ours_vs_mmdet"]}, training '
          f'step {report["train_step_ratio"]["ours_vs_mmdet"]}')
    write_report(report, args.out or os.path.join(ROOT, 'benchmarks', 'results',
                                                  f'{name}.json'))
    return report


if __name__ == '__main__':
    main()
