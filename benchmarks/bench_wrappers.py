"""Overhead of TIMMBackbone / TorchvisionBackbone over the raw library feature extractors.

Pairs (same architecture, same weights, same outputs):
  TIMMBackbone(m)        vs timm.create_model(m, features_only=True)
  TorchvisionBackbone(m) vs create_feature_extractor(torchvision m, same return_nodes)
for m in resnet50 and convnext_tiny. Paired alternating calls (order flipped every iteration),
median latency, ratio ours / raw in the same process. Target: <= 2% overhead. On a busy machine
the ratio of two ~100 ms medians is noisier than 2% (use ``--clock cpu --threads 1`` there), so
the wrapper's own cost is also measured directly: our forward with the wrapped network replaced
by a replay of its outputs, against the replay alone (``wrap us``), also as a share of the raw
forward (``wrap %``).

    python benchmarks/bench_wrappers.py [--quick] [--threads 2] [--batch 1] [--sides 224,64]
    python benchmarks/bench_wrappers.py --clock cpu --threads 1   # on a shared machine

Writes benchmarks/results/wrappers.json.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results')
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from benchlib import timed_rounds  # noqa: E402

TV_NODES = {
    'resnet50': {'layer1': 'res2', 'layer2': 'res3', 'layer3': 'res4', 'layer4': 'res5'},
    'convnext_tiny': {'features.1': 'stage1', 'features.3': 'stage2', 'features.5': 'stage3',
                      'features.7': 'stage4'},
}


def build_timm_pair(name):
    import timm

    from mmbackbones.models.backbones.timm_backbone import TIMMBackbone
    raw = timm.create_model(name, features_only=True).eval()
    ours = TIMMBackbone(name, features_only=True).eval()
    ours.timm_model.load_state_dict(raw.state_dict())
    return ours, raw


def build_torchvision_pair(name):
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    from mmbackbones.models.backbones.torchvision_backbone import TorchvisionBackbone
    raw = create_feature_extractor(torchvision.models.get_model(name), TV_NODES[name]).eval()
    ours = TorchvisionBackbone(name, return_nodes=TV_NODES[name]).eval()
    ours.model.load_state_dict(raw.state_dict())
    return ours, raw


CLOCKS = {'wall': time.perf_counter, 'cpu': time.thread_time}


def paired_latency(ours, raw, x, iters, warmup, clock='wall'):
    """Alternate ours/raw call by call (order flipped each iteration, benchlib.timed_rounds);
    medians in seconds.

    ``clock='cpu'`` reads the calling thread's CPU time (use with ``--threads 1``): time the
    process spends preempted by other jobs is not counted, so a shared machine still gives
    comparable numbers.
    """
    with torch.inference_mode():
        times = timed_rounds({'ours': ours, 'raw': raw}, x, iters, warmup, clock=CLOCKS[clock])
    return statistics.median(times['ours']), statistics.median(times['raw'])


class _Replay(torch.nn.Module):
    """Stands in for the wrapped network: returns outputs computed once."""

    def __init__(self, outs):
        super().__init__()
        self.outs = outs

    def forward(self, x):
        return self.outs


def wrapper_only_us(ours, raw, x, iters):
    """The wrapper's own cost per call (us): ``ours`` with its wrapped network replaced by a
    replay of that network's outputs, against the replay alone (paired, medians)."""
    attr = 'timm_model' if hasattr(ours, 'timm_model') else 'model'
    inner = getattr(ours, attr)
    with torch.inference_mode():
        replay = _Replay(inner(x))
    setattr(ours, attr, replay)
    try:
        t_ours, t_replay = paired_latency(ours, replay, x, iters, warmup=20, clock='wall')
    finally:
        setattr(ours, attr, inner)
    return (t_ours - t_replay) * 1e6


def check_same_outputs(ours, raw, x):
    with torch.inference_mode():
        a = ours(x)
        b = raw(x)
    b = list(b.values()) if isinstance(b, dict) else list(b)
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer iterations')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--clock', choices=sorted(CLOCKS), default='wall',
                        help="'cpu': thread CPU time (with --threads 1), robust on a shared box")
    parser.add_argument('--sides', default='224', help='comma-separated input sides')
    parser.add_argument('--models', default='resnet50,convnext_tiny')
    parser.add_argument('--out', default=os.path.join(RESULTS, 'wrappers.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    iters, warmup = (10, 2) if args.quick else (40, 5)
    micro_iters = 500 if args.quick else 2000
    sides = [int(s) for s in args.sides.split(',')]

    rows = []
    print(f'{"pair":44s} {"side":>4s} {"ours ms":>9s} {"raw ms":>9s} {"ratio":>7s} '
          f'{"wrap us":>9s} {"wrap %":>8s}  same')
    for name in args.models.split(','):
        for label, builder in (('TIMMBackbone', build_timm_pair),
                               ('TorchvisionBackbone', build_torchvision_pair)):
            torch.manual_seed(0)
            ours, raw = builder(name)
            for side in sides:
                x = torch.randn(args.batch, 3, side, side)
                same = check_same_outputs(ours, raw, x)
                t_ours, t_raw = paired_latency(ours, raw, x, iters, warmup, args.clock)
                wrapper_us = wrapper_only_us(ours, raw, x, micro_iters)
                ratio = t_ours / t_raw
                pair = f'{label}({name}) vs raw'
                rows.append(dict(pair=pair, model=name, wrapper=label, side=side,
                                 batch=args.batch, ours_ms=t_ours * 1e3, raw_ms=t_raw * 1e3,
                                 ratio=ratio, overhead_pct=(ratio - 1) * 100,
                                 wrapper_us_per_call=wrapper_us,
                                 wrapper_pct_of_raw=wrapper_us / (t_raw * 1e6) * 100,
                                 same_outputs=same))
                print(f'{pair:44s} {side:4d} {t_ours * 1e3:9.2f} {t_raw * 1e3:9.2f} '
                      f'{ratio:7.3f} {wrapper_us:9.1f} {wrapper_us / (t_raw * 1e4):8.3f}  {same}',
                      flush=True)
            del ours, raw

    result = dict(
        benchmark='wrappers', quick=args.quick, iters=iters, warmup=warmup,
        threads=args.threads, clock=args.clock, torch=torch.__version__, python=platform.python_version(),
        machine=platform.machine(), target='ratio <= 1.02', rows=rows,
        max_overhead_pct=max(r['overhead_pct'] for r in rows),
        max_wrapper_pct_of_raw=max(r['wrapper_pct_of_raw'] for r in rows),
        load_average=os.getloadavg(), cpu_count=os.cpu_count(),
        note='shared 2-core machine: other jobs may add noise to both sides of each pair')
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'max overhead (paired medians) {result["max_overhead_pct"]:+.2f}%, wrapper cost '
          f'{result["max_wrapper_pct_of_raw"]:+.3f}% of a raw forward -> {args.out}')
    return result


if __name__ == '__main__':
    main()
