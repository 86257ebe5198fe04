"""One table: each of our backbones against its anchor, measured the same way in one run.

For every pair: latency ratio (ours / anchor, paired alternating runs, median), build-time ratio,
peak memory of live activations in one forward (inference, and with autograd on), the training
step (forward + backward in train mode: median of paired per-round ratios, and the step's peak
memory, gradients included), and the import time of ``mmbackbones`` beside ``timm`` and
``torchvision``. Anchors that are not
installed are skipped with the reason printed. Results go to ``benchmarks/results/bench_all.json``.

    python benchmarks/bench_all.py [--quick] [--threads N] [--batch N] [--only resnet50,vit-b16]
    python benchmarks/bench_all.py --device cuda [--autocast bf16] [--channels-last]

On a GPU every call is synchronised before its clock stops; ``--autocast`` runs both sides'
forwards under ``torch.autocast`` with that dtype, ``--channels-last`` converts both models and
the input to channels-last.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results')
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from benchlib import (AUTOCAST, TrainStep, add_device_arguments,  # noqa: E402
                      check_device_arguments, per_round_ratios, ratio_summary, step_memory_mib,
                      synced, timed_rounds)

# name: (our config, anchor kind, anchor name, input side). Anchor kinds: timm (features_only
# where the wrapped model is a feature extractor), torchvision, mmpretrain.
PAIRS = {
    'resnet50': (dict(type='ResNet', depth=50), 'timm', 'resnet50', 224),
    'resnet50/mmpretrain': (dict(type='ResNet', depth=50), 'mmpretrain', 'ResNet:depth=50', 224),
    'resnet50/torchvision': (dict(type='ResNet', depth=50), 'torchvision', 'resnet50', 224),
    'vit-b16': (dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16),
                'timm', 'vit_base_patch16_224', 224),
    'convnext-t': (dict(type='ConvNeXt', arch='tiny'), 'timm', 'convnext_tiny', 224),
    'swin-t': (dict(type='SwinTransformer', arch='tiny'), 'timm',
               'swin_tiny_patch4_window7_224', 224),
    'regnetx-4.0gf': (dict(type='RegNet', arch='regnetx_4.0gf'), 'timm', 'regnetx_040', 224),
    'cspresnext50': (dict(type='CSPResNeXt', depth=50), 'timm', 'cspresnext50', 224),
    'TIMMBackbone(resnet50)': (dict(type='TIMMBackbone', model_name='resnet50', features_only=True),
                               'timm-features',
                               'resnet50', 224),
    'TorchvisionBackbone(resnet50)': (
        dict(type='TorchvisionBackbone', model_name='resnet50',
             return_nodes={'layer1': 'res2', 'layer2': 'res3', 'layer3': 'res4',
                           'layer4': 'res5'}),
        'torchvision-features', 'resnet50', 224),
}


def build_anchor(kind: str, name: str):
    if kind in ('timm', 'timm-features'):
        import timm
        model = timm.create_model(name, pretrained=False, features_only=(kind == 'timm-features'))
        if kind == 'timm' and hasattr(model, 'reset_classifier'):
            model.reset_classifier(0, '')  # compare feature extraction, not the head
        return model
    if kind == 'torchvision':
        import torchvision
        return torchvision.models.get_model(name, weights=None)
    if kind == 'torchvision-features':
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor
        model = torchvision.models.get_model(name, weights=None)
        return create_feature_extractor(model, {f'layer{i}': f'res{i + 1}' for i in range(1, 5)})
    if kind == 'mmpretrain':
        import mmpretrain.models  # noqa: F401  (registers its modules)
        from mmpretrain.registry import MODELS
        type_name, _, args = name.partition(':')
        kwargs = {k: int(v) for k, v in (a.split('=') for a in args.split(',') if a)}
        return MODELS.build(dict(type=type_name, **kwargs))
    raise ValueError(f'unknown anchor kind {kind!r}')


def build_ours(cfg: dict):
    from mmbackbones import build_backbone
    return build_backbone(dict(cfg))


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def paired_latency(ours, anchor, x, iters: int, warmup: int, amp=None):
    """Median seconds per call of each, timed in alternating order (benchlib.timed_rounds)."""
    with torch.inference_mode():
        times = timed_rounds({'ours': synced(ours, x.device, amp),
                              'anchor': synced(anchor, x.device, amp)}, x, iters, warmup)
    return statistics.median(times['ours']), statistics.median(times['anchor'])


def forward_peaks_mib(model, x):
    """Peak bytes of live activations in one forward, inference and with autograd (MiB), as
    `mmbackbones info` measures them (tensors tracked through a dispatch mode, weights excluded)."""
    from mmbackbones.analysis.complexity import forward_memory
    inference = forward_memory(model, x, grad=False)['peak']
    training = forward_memory(model, x, grad=True)['peak']
    return inference / 2**20, training / 2**20


def import_times(repeats: int = 3):
    """Median wall time of a fresh `import X` for mmbackbones and the libraries it wraps."""
    out = {}
    for module in ('mmbackbones', 'timm', 'torchvision'):
        samples = []
        for _ in range(repeats):
            code = (f'import time; t = time.perf_counter(); import {module}; '
                    f'print(time.perf_counter() - t)')
            result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
            if result.returncode == 0:
                samples.append(float(result.stdout.strip().splitlines()[-1]))
        out[module] = statistics.median(samples) if samples else None
    return out


def run_pair(name, cfg, kind, anchor_name, side, args):
    try:
        ours, t_build_ours = _timed(lambda: build_ours(cfg))
        anchor, t_build_anchor = _timed(lambda: build_anchor(kind, anchor_name))
        # Not chained: mmpretrain's ResNet.train() returns None, so its .eval() does too.
        ours.eval()
        anchor.eval()
    except Exception as exc:  # an anchor or family that is not installed
        return dict(name=name, skipped=f'{type(exc).__name__}: {exc}'.splitlines()[0][:160])
    device = torch.device(args.device)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    ours, anchor = ours.to(device, memory_format=layout), anchor.to(device, memory_format=layout)
    x = torch.randn(args.batch, 3, side, side, device=device).contiguous(memory_format=layout)
    lat_ours, lat_anchor = paired_latency(ours, anchor, x, args.iters, args.warmup,
                                          AUTOCAST[args.autocast])
    row = dict(name=name, anchor=f'{kind}:{anchor_name}', batch=args.batch, side=side,
               latency_ours_ms=lat_ours * 1e3, latency_anchor_ms=lat_anchor * 1e3,
               latency_ratio=lat_ours / lat_anchor,
               build_ours_s=t_build_ours, build_anchor_s=t_build_anchor,
               build_ratio=t_build_ours / t_build_anchor)
    if not args.no_memory:
        row['peak_mib_ours'], row['train_peak_mib_ours'] = forward_peaks_mib(ours, x)
        row['peak_mib_anchor'], row['train_peak_mib_anchor'] = forward_peaks_mib(anchor, x)
    if not args.no_train:
        row.update(train_step_figures(ours, anchor, x, args))
    return row


def train_step_figures(ours, anchor, x, args) -> dict:
    """Training step (forward + backward, train mode) ours / anchor, paired rounds, and the
    peak memory of one step (benchlib.step_memory_mib)."""
    ours.train()
    anchor.train()
    amp = AUTOCAST[args.autocast]
    steps = {'ours': TrainStep(ours, autocast=amp), 'anchor': TrainStep(anchor, autocast=amp)}
    try:
        times = timed_rounds({k: synced(s, x.device) for k, s in steps.items()}, x,
                             args.train_rounds, 1)
        out = dict(train_ratio=ratio_summary(per_round_ratios(times, 'ours', 'anchor')),
                   train_step_ms_ours=statistics.median(times['ours']) * 1e3,
                   train_step_ms_anchor=statistics.median(times['anchor']) * 1e3)
        if not args.no_memory:
            out['step_peak_mib_ours'] = step_memory_mib(steps['ours'], x)['peak']
            out['step_peak_mib_anchor'] = step_memory_mib(steps['anchor'], x)['peak']
    except RuntimeError as exc:  # e.g. a wrapper whose outputs do not need grad
        out = dict(train_skipped=str(exc).splitlines()[0][:120])
    ours.eval()
    anchor.eval()
    return out


def _train_cell(row) -> str:
    if 'train_ratio' not in row:
        return row.get('train_skipped', '-')
    t = row['train_ratio']
    return f"{t['median']:.3f} [{t['q1']:.3f}, {t['q3']:.3f}]"


def print_table(rows, imports):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text fallback
        Console = None
    headers = ['backbone', 'anchor', 'latency ours/anchor', 'ms ours', 'ms anchor',
               'build ratio', 'peak MiB ours/anchor (inference)',
               'peak MiB ours/anchor (autograd)', 'train step ours/anchor [q1, q3]',
               'train step peak MiB ours/anchor']
    lines = []
    for r in rows:
        if 'skipped' in r:
            lines.append([r['name'], 'skipped', r['skipped'], '', '', '', '', '', '', ''])
            continue
        fmt = (lambda v: '-' if v is None else f'{v:.0f}')
        lines.append([r['name'], r['anchor'], f"{r['latency_ratio']:.3f}",
                      f"{r['latency_ours_ms']:.1f}", f"{r['latency_anchor_ms']:.1f}",
                      f"{r['build_ratio']:.2f}",
                      f"{fmt(r.get('peak_mib_ours'))} / {fmt(r.get('peak_mib_anchor'))}",
                      f"{fmt(r.get('train_peak_mib_ours'))} / "
                      f"{fmt(r.get('train_peak_mib_anchor'))}", _train_cell(r),
                      f"{fmt(r.get('step_peak_mib_ours'))} / "
                      f"{fmt(r.get('step_peak_mib_anchor'))}"])
    title = 'import time (s): ' + ', '.join(
        f'{k} {v:.2f}' if v is not None else f'{k} -' for k, v in imports.items())
    if Console is None:
        print(title)
        print(' | '.join(headers))
        for line in lines:
            print(' | '.join(line))
        return
    table = Table(title='mmbackbones vs anchors (paired, median)', caption=title)
    for h in headers:
        table.add_column(h)
    for line in lines:
        table.add_row(*line)
    Console(width=200).print(table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer iterations')
    parser.add_argument('--threads', type=int, default=2)
    add_device_arguments(parser)
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--warmup', type=int, default=None)
    parser.add_argument('--only', default='', help='comma-separated pair names')
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument('--no-train', action='store_true', help='skip the training-step columns')
    parser.add_argument('--train-rounds', type=int, default=None)
    parser.add_argument('--output', default=os.path.join(RESULTS, 'bench_all.json'))
    args = parser.parse_args(argv)
    args.iters = args.iters or (6 if args.quick else 20)
    args.warmup = args.warmup or (1 if args.quick else 3)
    args.train_rounds = args.train_rounds or (3 if args.quick else 7)
    check_device_arguments(parser, args)
    torch.set_num_threads(args.threads)
    wanted = [n for n in args.only.split(',') if n] or list(PAIRS)
    unknown = [n for n in wanted if n not in PAIRS]
    if unknown:
        parser.error(f'--only: unknown pair(s) {unknown}; known: {sorted(PAIRS)}')
    rows = []
    for name in wanted:
        cfg, kind, anchor_name, side = PAIRS[name]
        print(f'[bench_all] {name} vs {kind}:{anchor_name} ...', file=sys.stderr, flush=True)
        rows.append(run_pair(name, cfg, kind, anchor_name, side, args))
    imports = import_times()
    print_table(rows, imports)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, 'w') as f:
        json.dump(dict(time=time.strftime('%Y-%m-%dT%H:%M:%S'), torch=torch.__version__,
                       machine=platform.machine(), threads=args.threads, quick=args.quick,
                       device=args.device, autocast=args.autocast,
                       channels_last=args.channels_last,
                       import_s=imports, rows=rows), f, indent=2)
    print(f'results written to {args.output}')
    return rows


if __name__ == '__main__':
    main()
