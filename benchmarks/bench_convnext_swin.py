"""ConvNeXt and Swin CPU latency: ours vs the same network in timm, same weights.

Pairs (outputs checked equal before timing; both produce the same tensor):

    convnext-t        ConvNeXt('tiny', out_indices=3) pooled+normed (N, 768)
                      vs timm convnext_tiny forward_head(forward_features(x), pre_logits=True)
    convnext-t/dense  ConvNeXt('tiny', out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
                      vs timm's stem and stages with the same four output LayerNorm2d
                      (timm has none of its own) and contiguous outputs
    swin-t            SwinTransformer('tiny') last stage, normed, (N, 768, 7, 7) contiguous
                      vs timm swin_tiny_patch4_window7_224 forward_features, permuted to NCHW
                      and made contiguous (the backbone contract's layout)
    swin-t/dense      SwinTransformer('tiny', out_indices=(0, 1, 2, 3)) vs timm's patch embed
                      and layers with the same four output LayerNorms, NCHW contiguous

Weights are random, converted timm -> ours with ``mmbackbones.checkpoint.converters``. Runs are
paired: each round runs every model of a pair once, in alternating order, so drifts of a shared
machine hit both alike. Reported: median latency per model and the median of the per-round
ratios ours/timm (the headline; target <= 1.00).

    python benchmarks/bench_convnext_swin.py [--quick] [--threads 2] [--batch 4] [--only swin-t]
                                             [--clock wall|cpu] [--out results.json]
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
from benchlib import per_round_ratios, timed_rounds, write_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PAIRS = ('convnext-t', 'convnext-t/dense', 'swin-t', 'swin-t/dense')
QUICK_PAIRS = ('convnext-t', 'swin-t')
SIZE = 224  # timm's Swin-T takes only its img_size


def _randomize_(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.rand(p.shape, generator=gen) * 0.5 + 0.5 if name.endswith(
                    ('weight', 'gamma')) else torch.randn(p.shape, generator=gen) * 0.1)


class _Call(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def build_pair(name: str):
    """``(ours, timm, timm_name)``: callables returning the same tensor(s) from the same
    weights."""
    import timm

    from mmbackbones.checkpoint.converters.timm_convnext import convert_timm_convnext
    from mmbackbones.checkpoint.converters.timm_swin import convert_timm_swin
    from mmbackbones.models.backbones.convnext import ConvNeXt
    from mmbackbones.models.backbones.swin import SwinTransformer

    dense = name.endswith('/dense')
    if name.startswith('convnext'):
        timm_name = 'convnext_tiny'
        t = timm.create_model(timm_name, pretrained=False).eval()
        _randomize_(t)
        ours = ConvNeXt('tiny', out_indices=(0, 1, 2, 3) if dense else 3,
                        gap_before_final_norm=not dense).eval()
        ours.load_state_dict(convert_timm_convnext(t.state_dict()), strict=False)
        if dense:
            # timm has no per-stage output norms: give it ours (timm LayerNorm2d, same
            # weights), so both compute the same four normed, contiguous maps
            norms = []
            for i in range(4):
                norm = timm.layers.LayerNorm2d(ours.channels[i], eps=1e-6).eval()
                norm.load_state_dict(getattr(ours, f'norm{i}').state_dict())
                norms.append(norm)

            def timm_dense(x):
                x = t.stem(x)
                outs = []
                for stage, norm in zip(t.stages, norms):
                    x = stage(x)
                    outs.append(norm(x).contiguous())
                return outs

            anchor = _Call(timm_dense)
        else:
            anchor = _Call(lambda x: t.forward_head(t.forward_features(x), pre_logits=True))
    else:
        timm_name = 'swin_tiny_patch4_window7_224'
        t = timm.create_model(timm_name, pretrained=False).eval()
        _randomize_(t)
        ours = SwinTransformer('tiny', out_indices=(0, 1, 2, 3) if dense else 3).eval()
        ours.load_state_dict(convert_timm_swin(t.state_dict()), strict=False)
        if dense:
            # timm normalizes only its last stage: give it ours for the others
            norms = [getattr(ours, f'norm{i}') for i in range(3)] + [t.norm]

            def timm_dense(x):
                x = t.patch_embed(x)
                outs = []
                for layer, norm in zip(t.layers, norms):
                    x = layer(x)
                    outs.append(norm(x).permute(0, 3, 1, 2).contiguous())
                return outs

            anchor = _Call(timm_dense)
        else:
            anchor = _Call(lambda x: t.forward_features(x).permute(0, 3, 1, 2).contiguous())
    return ours, anchor, timm_name


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def run_pair(name, batch, size, rounds, warmup, clock=time.perf_counter):
    ours, anchor, timm_name = build_pair(name)
    x = torch.randn(batch, 3, size, size)
    models = {'ours': ours, 'timm': anchor}
    with torch.inference_mode():
        got, ref = _as_list(ours(x)), _as_list(anchor(x))
        diff = max(float((g - r).abs().max() / r.abs().max()) for g, r in zip(got, ref))
        times = timed_rounds(models, x, rounds, warmup, clock)
        ratios = per_round_ratios(times, 'ours', 'timm')
    med = {k: statistics.median(t) for k, t in times.items()}
    return dict(
        timm_model=timm_name,
        median_ms={k: round(v * 1e3, 2) for k, v in med.items()},
        min_ms={k: round(min(t) * 1e3, 2) for k, t in times.items()},
        ratio_ours_vs_timm=round(statistics.median(ratios), 4),
        ratio_of_medians=round(med['ours'] / med['timm'], 4),
        max_rel_diff_vs_timm=diff)


def print_table(results):
    headers = ['pair', 'timm model', 'ms ours', 'ms timm', 'ours/timm (median of ratios)',
               'ratio of medians', 'max rel diff']
    rows = [[name, r['timm_model'], f"{r['median_ms']['ours']:.1f}",
             f"{r['median_ms']['timm']:.1f}", f"{r['ratio_ours_vs_timm']:.3f}",
             f"{r['ratio_of_medians']:.3f}", f"{r['max_rel_diff_vs_timm']:.1e}"]
            for name, r in results.items()]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(' | '.join(headers))
        for row in rows:
            print(' | '.join(row))
        return
    table = Table(title='ConvNeXt / Swin vs timm (CPU, paired, median)')
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*row)
    Console(width=150).print(table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer rounds, two pairs')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--only', default=None, help='comma-separated pair names')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='wall time, or this process\'s CPU time (steadier on a machine '
                             'shared with other jobs; with N threads it sums their time)')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'convnext_swin.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = args.only.split(',') if args.only else (QUICK_PAIRS if args.quick else PAIRS)
    unknown = [p for p in pairs if p not in PAIRS]
    if unknown:
        parser.error(f'unknown pairs {unknown}; known: {", ".join(PAIRS)}')
    rounds = args.rounds or (6 if args.quick else 20)
    warmup = 1 if args.quick else 3
    results = {}
    for name in pairs:
        clock = time.perf_counter if args.clock == 'wall' else time.process_time
        results[name] = run_pair(name, args.batch, SIZE, rounds, warmup, clock)
        print(f'{name}: {results[name]}', flush=True)
    print_table(results)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    report = dict(
        benchmark='convnext_swin', quick=args.quick, threads=args.threads, batch=args.batch,
        size=SIZE, rounds=rounds, warmup=warmup, clock=args.clock, dtype='float32',
        device='cpu',
        torch=torch.__version__, python=platform.python_version(), machine=platform.machine(),
        cpu_count=os.cpu_count(), load_average_at_end=load, results=results,
        note='paired alternating rounds; headline ratio = median of per-round ours/timm')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
