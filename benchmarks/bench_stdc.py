"""STDC (STDCNet inside STDCContextPathNet, as mmseg's STDC-Seg configs build it): ours vs
mmseg's, inference and a training step, in one run (timm has no STDC).

Same network, same weights (ours randomized with realistic BN statistics, loaded into mmseg's,
whose keys are ours); the four outputs are checked equal before timing. Paired rounds in a
rotating order; reported: median latency and the median of the per-round ratios ours/mmseg with
its spread, for inference and a training step (forward, a scalar loss on the last output (the
fused map), backward, gradients dropped). Needs mmseg (the downstream venv):

    .venv-downstream/bin/python benchmarks/bench_stdc.py [--quick] [--stdc-type STDCNet1]
        [--size 512]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (TrainStep, per_round_ratios, randomize_, ratio_summary,  # noqa: E402
                      timed_rounds, write_report)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_models(stdc_type: str) -> dict:
    import mmseg.models  # noqa: F401 - registers
    from mmseg.registry import MODELS as MMSEG

    from mmbackbones.models.backbones.stdc import STDCContextPathNet

    norm = dict(type='BN', requires_grad=True)
    net = dict(type='STDCNet', stdc_type=stdc_type, in_channels=3,
               channels=(32, 64, 256, 512, 1024), bottleneck_type='cat', num_convs=4,
               norm_cfg=norm, act_cfg=dict(type='ReLU'), with_final_conv=False)
    path = dict(last_in_channels=(1024, 512), out_channels=128,
                ffm_cfg=dict(in_channels=384, out_channels=256, scale_factor=4))
    ours = STDCContextPathNet(backbone_cfg=net, **path)
    state = randomize_(ours)
    theirs = MMSEG.build(dict(type='STDCContextPathNet', _scope_='mmseg', backbone_cfg=net,
                              **path))
    theirs.load_state_dict(state)
    return {'ours': ours, 'mmseg': theirs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='256 px, 3 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--stdc-type', default='STDCNet1', choices=('STDCNet1', 'STDCNet2'))
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'stdc.json'))
    args = parser.parse_args(argv)
    batch = args.batch or 2  # training: conv_avg's BN needs batch > 1
    size = args.size or (256 if args.quick else 512)
    rounds = args.rounds or (3 if args.quick else 10)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = build_models(args.stdc_type)
    x = torch.randn(batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    for m in models.values():
        m.eval()
    with torch.inference_mode():
        ref, out = models['mmseg'](x), models['ours'](x)
        diff = max(float((o - r).abs().max() / r.abs().max()) for o, r in zip(out, ref))
        infer = timed_rounds(models, x, rounds, 1, time.perf_counter)
    for m in models.values():
        m.train()
    train = timed_rounds({k: TrainStep(m) for k, m in models.items()}, x, rounds, 1,
                         time.perf_counter)
    report = dict(benchmark='stdc', stdc_type=args.stdc_type, batch=batch, size=size,
                  dtype='float32', device='cpu', threads=args.threads, rounds=rounds,
                  quick=args.quick, torch=torch.__version__, machine=platform.machine(),
                  load_average_before=load_before,
                  load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
                  max_rel_diff_vs_mmseg=diff)
    for kind, times in (('inference', infer), ('train_step', train)):
        report[kind] = dict(
            median_ms={k: round(statistics.median(t) * 1e3, 1) for k, t in times.items()},
            ours_vs_mmseg=ratio_summary(per_round_ratios(times, 'ours', 'mmseg')))
    print(f'{args.stdc_type} + context path, batch {batch}, {size}x{size}, fp32, {args.threads} '
          f'threads, {rounds} paired rounds (load average {load_before}); max rel diff {diff:.1e}')
    for kind in ('inference', 'train_step'):
        r = report[kind]
        print(f'  {kind:10s} median ms {r["median_ms"]}  ours/mmseg '
              f'{r["ours_vs_mmseg"]["median"]:.3f} (q1 {r["ours_vs_mmseg"]["q1"]:.3f}, q3 '
              f'{r["ours_vs_mmseg"]["q3"]:.3f})')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
