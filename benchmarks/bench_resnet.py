"""ResNet-50 CPU latency: ours vs timm vs torchvision vs mmpretrain, plus our deploy paths.

Batch 8, 224x224, fp32, ``torch.inference_mode``, every model returning the res5 feature map
(``forward_features`` for timm, the trunk without pooling/fc for torchvision, ``out_indices=(3,)``
for ours and mmpretrain's). All models hold the same weights (mmpretrain, torchvision and timm use
the same parameter names for ResNet-50), and their outputs are checked equal before timing.

Runs are paired: each round times every model once, in a rotating order, so drifts of a shared
machine hit all alike; reported are per-model medians and ratios of medians to timm's. A large
fp32 matmul is timed in the same rounds as the practical GFLOP/s ceiling; achieved GFLOP/s of a
model = its conv/linear FLOPs (2 x MACs, counted with hooks) / median latency.

    python benchmarks/bench_resnet.py [--quick] [--threads 2] [--out benchmarks/results/resnet.json]
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
from benchlib import LastOutput, randomize_, timed_rounds, write_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_models(channels_last_variants: bool = True):
    import timm
    import torchvision
    from mmpretrain.models.backbones import ResNet as MMPResNet

    from mmbackbones.models.backbones.resnet import ResNet

    ours = ResNet(depth=50, out_indices=(3,)).eval()
    state = randomize_(ours)
    mmp = MMPResNet(depth=50, out_indices=(3,))
    mmp.load_state_dict(state)
    mmp.eval()
    tv = torchvision.models.resnet50(weights=None)
    tv.load_state_dict(state, strict=False)
    tv_trunk = nn.Sequential(*list(tv.children())[:-2]).eval()  # without avgpool and fc
    tm = timm.create_model('resnet50', pretrained=False)
    tm.load_state_dict(state, strict=False)
    tm.eval()

    models = {
        'timm': LastOutput(tm, 'forward_features'),
        'ours': LastOutput(ours),
        'torchvision': tv_trunk,
        'mmpretrain': LastOutput(mmp),
    }
    fused = ResNet(depth=50, out_indices=(3,))
    fused.load_state_dict(state)
    models['ours_fused'] = LastOutput(fused.fuse())
    if channels_last_variants:
        cl = ResNet(depth=50, out_indices=(3,), channels_last=True)
        cl.load_state_dict(state)
        models['ours_channels_last'] = LastOutput(cl.eval())
        fcl = ResNet(depth=50, out_indices=(3,), channels_last=True)
        fcl.load_state_dict(state)
        models['ours_fused_channels_last'] = LastOutput(fcl.fuse())
    return models, ours


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """2 x multiply-accumulates of every conv and linear layer for input ``x``."""
    total = [0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            macs = output.numel() * module.in_features
        total[0] += 2 * macs

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return total[0]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer rounds (smoke run)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--matmul-n', type=int, default=2048)
    parser.add_argument('--no-channels-last', action='store_true')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='wall: perf_counter; cpu: process CPU time (steadier on a shared '
                             'machine with --threads 1; with more threads it counts spinning)')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'resnet.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rounds = args.rounds or (5 if args.quick else 20)
    warmup = 1 if args.quick else 3

    models, ours = build_models(not args.no_channels_last)
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.inference_mode():
        ref = models['ours'](x)
        scale = float(ref.abs().max())
        max_diff = {name: float((m(x).float() - ref).abs().max()) / scale
                    for name, m in models.items()}
    flops = count_flops(ours, x)

    n = args.matmul_n
    a, b = torch.randn(n, n), torch.randn(n, n)
    matmul_flops = 2 * n ** 3

    runners = dict(models)
    runners['matmul'] = lambda _: torch.mm(a, b)
    clock = time.perf_counter if args.clock == 'wall' else time.process_time
    with torch.inference_mode():  # paired rounds, rotating who goes first
        times = timed_rounds(runners, x, rounds, warmup, clock=clock)

    med = {name: statistics.median(t) for name, t in times.items()}
    matmul_gflops = matmul_flops / med['matmul'] / 1e9
    results = {}
    for name in models:
        gflops = flops / med[name] / 1e9
        results[name] = dict(
            median_ms=round(med[name] * 1e3, 2), min_ms=round(min(times[name]) * 1e3, 2),
            max_ms=round(max(times[name]) * 1e3, 2),
            ratio_vs_timm=round(med[name] / med['timm'], 4),
            ratio_vs_mmpretrain=round(med[name] / med['mmpretrain'], 4),
            achieved_gflops_per_s=round(gflops, 1),
            fraction_of_matmul=round(gflops / matmul_gflops, 3),
            max_rel_diff_vs_ours=max_diff[name])
    report = dict(
        benchmark='resnet50', batch=args.batch, size=args.size, dtype='float32', device='cpu',
        threads=args.threads, clock=args.clock, rounds=rounds, quick=args.quick,
        model_gflop=round(flops / 1e9, 2),
        matmul=dict(n=n, median_ms=round(med['matmul'] * 1e3, 2),
                    gflops_per_s=round(matmul_gflops, 1)),
        torch=torch.__version__, machine=platform.machine(), cpu_count=os.cpu_count(),
        load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None,
        models=results)

    print(f'ResNet-50, batch {args.batch}, {args.size}x{args.size}, fp32, {args.threads} threads, '
          f'{args.clock} clock, {rounds} paired rounds; {flops / 1e9:.1f} GFLOP per batch')
    print(f'{"model":26s} {"median ms":>10s} {"vs timm":>8s} {"vs mmpt":>8s} {"GFLOP/s":>8s} '
          f'{"of mm":>6s} {"rel diff":>10s}')
    for name, res in results.items():
        print(f'{name:26s} {res["median_ms"]:10.1f} {res["ratio_vs_timm"]:8.3f} '
              f'{res["ratio_vs_mmpretrain"]:8.3f} {res["achieved_gflops_per_s"]:8.1f} '
              f'{res["fraction_of_matmul"]:6.2f} {res["max_rel_diff_vs_ours"]:10.2e}')
    print(f'{"matmul " + str(n):26s} {med["matmul"] * 1e3:10.1f} {"":8s} {"":8s} '
          f'{matmul_gflops:8.1f}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
