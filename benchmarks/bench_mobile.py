"""MobileNetV2, MobileNetV3-Large, EfficientNet-B0 and EfficientNetV2-B0 on CPU: ours vs
mmpretrain's class and timm's model, inference and one training step, in one run.

For each family the three are the same network with the same weights: ours randomized with
realistic BN statistics, loaded into mmpretrain's class (our keys are its keys) and into timm's
model through our converter's way back (``revert_timm_efficientnet``; timm's classifier head is
dropped with ``num_classes=0`` and its pooled head left out of the timed call:
``forward_features``). BN eps and padding follow timm's model (``mobilenetv3_large_100``: eps
1e-5; ``efficientnet_b0``: symmetric padding, eps 1e-5; ``tf_efficientnetv2_b0``: TF padding,
eps 1e-3); ``EfficientNet-tf`` is EfficientNet's default build (TF padding, eps 1e-3) against
``tf_efficientnet_b0``. Outputs (the last feature map) are checked equal before timing.

Runs are paired: each round calls every model once in a rotating order, so drifts of a shared
machine hit all alike. Reported per family and mode (``infer``: ``torch.inference_mode``;
``train``: forward + backward of a scalar loss): median latency per model and the medians of
the per-round ratios ours/mmpretrain and ours/timm (target <= 1.00).

    python benchmarks/bench_mobile.py [--quick] [--threads 2] [--batch 4] [--size 224]
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

BN5 = dict(type='BN', eps=1e-5)
# family: (ours kwargs, timm name)
FAMILIES = {
    'MobileNetV2': (dict(out_indices=(7, )), 'mobilenetv2_100'),
    'MobileNetV3': (dict(arch='large', norm_cfg=BN5, out_indices=(16, )),
                    'mobilenetv3_large_100'),
    'EfficientNet': (dict(arch='b0', conv_cfg=None, norm_cfg=BN5, out_indices=(6, )),
                     'efficientnet_b0'),
    'EfficientNetV2': (dict(arch='b0', out_indices=(-1, )), 'tf_efficientnetv2_b0'),
    # the default build (TF 'same' padding, eps 1e-3) against timm's TF port
    'EfficientNet-tf': (dict(arch='b0', out_indices=(6, )), 'tf_efficientnet_b0'),
}


class _Features(torch.nn.Module):
    """timm's ``forward_features`` as the module's forward (no pooled head)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


def build_models(family: str) -> dict:
    """``{'ours', 'mmpretrain', 'timm'}``: eval mode, identical weights."""
    import timm
    from mmpretrain.models import backbones as mmpretrain_backbones

    from mmbackbones.checkpoint.converters.timm_efficientnet import revert_timm_efficientnet
    from mmbackbones.registry import MODELS

    kwargs, timm_name = FAMILIES[family]
    kind = family.split('-')[0]  # 'EfficientNet-tf': the class EfficientNet
    ours = MODELS.build(dict(type=kind, **kwargs)).eval()
    state = randomize_(ours)
    theirs = getattr(mmpretrain_backbones, kind)(**kwargs)
    theirs.load_state_dict(state)
    theirs.eval()  # mmpretrain's train() returns None: no chaining
    timm_model = timm.create_model(timm_name, num_classes=0)
    missing = timm_model.load_state_dict(revert_timm_efficientnet(state), strict=False)
    assert not missing.unexpected_keys and all(
        k.startswith('conv_head') for k in missing.missing_keys), missing
    return {'ours': ours, 'mmpretrain': theirs, 'timm': _Features(timm_model).eval()}


def bench_family(family: str, x: torch.Tensor, rounds: int, warmup: int) -> dict:
    models = build_models(family)
    with torch.inference_mode():
        ref = models['mmpretrain'](x)[-1]
        diff = {name: float((m(x)[-1] if name != 'timm' else m(x)).sub(ref).abs().max()
                            / ref.abs().max()) for name, m in models.items()}
        infer = timed_rounds(models, x, rounds, warmup, time.perf_counter)
    for m in models.values():
        m.train()
    steps = {name: TrainStep(m) for name, m in models.items()}
    train = timed_rounds(steps, x, max(2, rounds // 2), 1, time.perf_counter)
    result = dict(max_rel_diff_vs_mmpretrain=diff)
    for mode, times in (('infer', infer), ('train', train)):
        result[mode] = dict(
            median_ms={k: round(statistics.median(t) * 1e3, 2) for k, t in times.items()},
            ours_vs_mmpretrain=ratio_summary(per_round_ratios(times, 'ours', 'mmpretrain')),
            ours_vs_timm=ratio_summary(per_round_ratios(times, 'ours', 'timm')))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='batch 1, 128 px, 4 rounds')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--families', default=','.join(FAMILIES))
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'mobile.json'))
    args = parser.parse_args(argv)
    batch = args.batch or (1 if args.quick else 4)
    size = args.size or (128 if args.quick else 224)
    rounds = args.rounds or (4 if args.quick else 10)
    warmup = 1 if args.quick else 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    results = {}
    print(f'batch {batch}, {size}x{size}, fp32, {args.threads} threads, {rounds} paired '
          f'rounds (load average {load_before})')
    for family in args.families.split(','):
        res = results[family] = bench_family(family, x, rounds, warmup)
        for mode in ('infer', 'train'):
            r = res[mode]
            print(f'  {family:15s} {mode}: ours {r["median_ms"]["ours"]:8.1f} ms, mmpretrain '
                  f'{r["median_ms"]["mmpretrain"]:8.1f} ms, timm {r["median_ms"]["timm"]:8.1f} '
                  f'ms; ours/mmpretrain {r["ours_vs_mmpretrain"]["median"]:.3f}, ours/timm '
                  f'{r["ours_vs_timm"]["median"]:.3f}')
    report = dict(
        benchmark='mobile', batch=batch, size=size, dtype='float32', device='cpu',
        threads=args.threads, clock='wall', rounds=rounds, quick=args.quick,
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        families=results)
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
