"""FocalNet CPU latency: ours vs timm's FocalNet (the same network, same weights), inference and
a training step, in one run.

Ours is randomized; timm's model (``focalnet_<arch>``, headless) loads the same values, each key
mapped back through our converter (``timm_focalnet``, one key at a time); the last stage's normed
map of both is checked equal before timing. detrex's FocalNet (the official
detection code) is not in the main environment; tests/detectron2 checks our outputs against it.

Runs are paired (each round calls every model once, rotating the order). Reported: median
latency per model and the median of the per-round ratios ours/timm (target <= 1.00).

    python benchmarks/bench_focalnet.py [--quick] [--threads 2] [--batch 2] [--size 224]
"""
import argparse
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


def build_models(arch: str = 'tiny_srf') -> dict:
    """``{'ours', 'timm'}`` in eval mode with identical weights; ours returns the last stage."""
    import timm

    from mmbackbones.checkpoint.converters.timm_focalnet import convert_timm_focalnet
    from mmbackbones.models.backbones.focalnet import FocalNet

    theirs = timm.create_model(f'focalnet_{arch}', num_classes=0, drop_path_rate=0.).eval()
    timm_state = theirs.state_dict()
    mapping = {}  # our key -> timm key (the converter renames; shapes may be flattened)
    for key in timm_state:
        converted = convert_timm_focalnet({key: timm_state[key]})
        mapping.update({new: key for new in converted})
    ours = FocalNet(arch, out_indices=(3, ), drop_path_rate=0.).eval()
    gen = torch.Generator().manual_seed(0)
    state = {k: v + 0.02 * torch.randn(v.shape, generator=gen)
             for k, v in ours.state_dict().items()}
    ours.load_state_dict(state)
    theirs.load_state_dict({mapping[k]: v.reshape(timm_state[mapping[k]].shape)
                            for k, v in state.items()})
    return {'ours': ours, 'timm': theirs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 160 px, 4 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--arch', default='tiny_srf')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'focalnet.json'))
    args = parser.parse_args(argv)
    batch = args.batch or (1 if args.quick else 2)
    size = args.size or (160 if args.quick else 224)
    rounds = args.rounds or (4 if args.quick else 10)
    warmup = 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = build_models(args.arch)
    fns = {'ours': lambda x: models['ours'](x)[0],
           'timm': lambda x: models['timm'].forward_features(x)}
    x = torch.randn(batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    with torch.inference_mode():
        ref, got = fns['timm'](x), fns['ours'](x)
        diff = float((got - ref).abs().max() / ref.abs().max())
        infer = timed_rounds(fns, x, rounds, warmup, time.perf_counter)
    for model in models.values():
        model.train()
    train = timed_rounds({k: TrainStep(models[k], fns[k]) for k in fns}, x, rounds, warmup,
                         time.perf_counter)
    report = dict(
        benchmark='focalnet', arch=args.arch, batch=batch, size=size, dtype='float32',
        device='cpu', threads=args.threads, clock='wall', rounds=rounds, quick=args.quick,
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        inference_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in infer.items()},
        train_step_median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in train.items()},
        ratio_ours_vs_timm_inference=round(statistics.median(
            per_round_ratios(infer, 'ours', 'timm')), 4),
        ratio_ours_vs_timm_train_step=round(statistics.median(
            per_round_ratios(train, 'ours', 'timm')), 4),
        max_rel_diff_vs_timm=diff)
    print(f'FocalNet-{args.arch}, batch {batch}, {size}x{size}, fp32, {args.threads} threads, '
          f'{rounds} paired rounds (load average {load_before}); max rel diff {diff:.1e}')
    print(f'  inference  {report["inference_median_ms"]}  ours/timm '
          f'{report["ratio_ours_vs_timm_inference"]:.3f}')
    print(f'  train step {report["train_step_median_ms"]}  ours/timm '
          f'{report["ratio_ours_vs_timm_train_step"]:.3f}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
