"""Overhead of TIMMBackbone / TorchvisionBackbone over the raw library feature extractors.

Pairs (same architecture, same weights, same outputs):
  TIMMBackbone(m)        vs timm.create_model(m, features_only=True)
  TorchvisionBackbone(m) vs create_feature_extractor(torchvision m, same return_nodes)
for m in resnet50 and convnext_tiny. Paired alternating calls (order flipped every iteration),
median latency, ratio ours / raw in the same process. Target: <= 2% overhead.

    python benchmarks/bench_wrappers.py [--quick] [--threads 2] [--batch 1] [--sides 224,64]

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

TV_NODES = {
    'resnet50': {'layer1': 'res2', 'layer2': 'res3', 'layer3': 'res4', 'layer4': 'res5'},
    'convnext_tiny': {'features.1': 'stage1', 'features.3': 'stage2', 'features.5': 'stage3',
                      'features.7': 'stage4'},
}


def build_timm_pair(name):
    import timm

    from mmbackbones.models.backbones.timm_backbone import TIMMBackbone
    raw = timm.create_model(name, features_only=True).eval()
    ours = TIMMBackbone(name).eval()
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


def paired_latency(ours, raw, x, iters, warmup):
    """Alternate ours/raw call by call (order flipped each iteration); medians in seconds."""
    t_ours, t_raw = [], []
    with torch.inference_mode():
        for _ in range(warmup):
            ours(x)
            raw(x)
        for i in range(iters):
            pair = (ours, raw) if i % 2 == 0 else (raw, ours)
            for model in pair:
                start = time.perf_counter()
                model(x)
                (t_ours if model is ours else t_raw).append(time.perf_counter() - start)
    return statistics.median(t_ours), statistics.median(t_raw)


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
    parser.add_argument('--sides', default='224', help='comma-separated input sides')
    parser.add_argument('--models', default='resnet50,convnext_tiny')
    parser.add_argument('--out', default=os.path.join(RESULTS, 'wrappers.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    iters, warmup = (10, 2) if args.quick else (40, 5)
    sides = [int(s) for s in args.sides.split(',')]

    rows = []
    print(f'{"pair":44s} {"side":>4s} {"ours ms":>9s} {"raw ms":>9s} {"ratio":>7s}  same')
    for name in args.models.split(','):
        for label, builder in (('TIMMBackbone', build_timm_pair),
                               ('TorchvisionBackbone', build_torchvision_pair)):
            torch.manual_seed(0)
            ours, raw = builder(name)
            for side in sides:
                x = torch.randn(args.batch, 3, side, side)
                same = check_same_outputs(ours, raw, x)
                t_ours, t_raw = paired_latency(ours, raw, x, iters, warmup)
                ratio = t_ours / t_raw
                pair = f'{label}({name}) vs raw'
                rows.append(dict(pair=pair, model=name, wrapper=label, side=side,
                                 batch=args.batch, ours_ms=t_ours * 1e3, raw_ms=t_raw * 1e3,
                                 ratio=ratio, overhead_pct=(ratio - 1) * 100,
                                 same_outputs=same))
                print(f'{pair:44s} {side:4d} {t_ours * 1e3:9.2f} {t_raw * 1e3:9.2f} '
                      f'{ratio:7.3f}  {same}', flush=True)
            del ours, raw

    result = dict(
        benchmark='wrappers', quick=args.quick, iters=iters, warmup=warmup,
        threads=args.threads, torch=torch.__version__, python=platform.python_version(),
        machine=platform.machine(), target='ratio <= 1.02', rows=rows,
        max_overhead_pct=max(r['overhead_pct'] for r in rows),
        note='shared 2-core machine: other jobs may add noise to both sides of each pair')
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'max overhead {result["max_overhead_pct"]:+.2f}% -> {args.out}')
    return result


if __name__ == '__main__':
    main()
