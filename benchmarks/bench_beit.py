"""BEiT-B/16: ours vs mmpretrain's BEiTViT and timm's beit_base_patch16_224, inference and a
training step, in one run.

Same network, same weights (ours randomized, loaded into mmpretrain's, whose keys are ours, and
into timm's through the ``timm_beit`` converter); the pooled outputs (mean of the patch tokens,
``ln2`` = timm's ``fc_norm``) are checked equal before timing. Runs are paired: each round calls
every model once in a rotating order, so drifts of a shared machine hit all alike. Reported:
median latency, medians of the per-round ratios ours/mmpretrain and ours/timm with their
spread, for inference (``torch.inference_mode``) and a training step (forward, a scalar loss,
backward, gradients dropped; no optimizer).

    python benchmarks/bench_beit.py [--quick] [--threads 2] [--batch 2] [--size 224]
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


class TimmPooled(torch.nn.Module):
    """timm's Beit up to the pooled, normalised features (no classifier)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def build_models(size: int) -> dict:
    import timm
    from mmpretrain.models.backbones import BEiTViT as MMPretrainBEiTViT

    from mmbackbones.checkpoint.converters.timm_beit import revert_timm_beit
    from mmbackbones.models.backbones.beit import BEiTViT

    ours = BEiTViT(arch='base', img_size=size)
    state = randomize_(ours)
    theirs = MMPretrainBEiTViT(arch='base', img_size=size)
    theirs.load_state_dict(state)
    timm_model = timm.create_model('beit_base_patch16_224', img_size=size, num_classes=0)
    timm_model.load_state_dict(revert_timm_beit(state), strict=False)  # + its non-persistent
    return {'ours': ours, 'mmpretrain': theirs, 'timm': TimmPooled(timm_model)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 3 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'beit.json'))
    args = parser.parse_args(argv)
    batch = args.batch or (1 if args.quick else 2)
    rounds = args.rounds or (3 if args.quick else 10)
    warmup = 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = build_models(args.size)
    x = torch.randn(batch, 3, args.size, args.size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    for m in models.values():
        m.eval()
    with torch.inference_mode():
        ref = models['mmpretrain'](x)[0]
        diff = {}
        for name, model in models.items():
            out = model(x)
            out = out[0] if isinstance(out, tuple) else out
            diff[name] = float((out - ref).abs().max() / ref.abs().max())
        infer = timed_rounds(models, x, rounds, warmup, time.perf_counter)
    for m in models.values():
        m.train()
    steps = {k: TrainStep(m) for k, m in models.items()}
    train = timed_rounds(steps, x, rounds, warmup, time.perf_counter)
    report = dict(benchmark='beit', arch='base', batch=batch, size=args.size, dtype='float32',
                  device='cpu', threads=args.threads, rounds=rounds, quick=args.quick,
                  torch=torch.__version__, machine=platform.machine(),
                  load_average_before=load_before,
                  load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
                  max_rel_diff_vs_mmpretrain=diff)
    for kind, times in (('inference', infer), ('train_step', train)):
        report[kind] = dict(
            median_ms={k: round(statistics.median(t) * 1e3, 1) for k, t in times.items()},
            ours_vs_mmpretrain=ratio_summary(per_round_ratios(times, 'ours', 'mmpretrain')),
            ours_vs_timm=ratio_summary(per_round_ratios(times, 'ours', 'timm')))
    print(f'BEiT-B/16, batch {batch}, {args.size}x{args.size}, fp32, {args.threads} threads, '
          f'{rounds} paired rounds (load average {load_before}); max rel diff {diff}')
    for kind in ('inference', 'train_step'):
        r = report[kind]
        print(f'  {kind:10s} median ms {r["median_ms"]}  ours/mmpretrain '
              f'{r["ours_vs_mmpretrain"]["median"]:.3f}  ours/timm '
              f'{r["ours_vs_timm"]["median"]:.3f}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
