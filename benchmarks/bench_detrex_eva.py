"""detrex's EVA ViTDet backbones on CPU: ``mmbackbones.detrex.EVA02_ViT`` / ``EVAViT`` (the core
ViT) against detrex's own classes on the same weights (outputs checked equal), and timm's
``eva02_base_patch14_224`` re-patched to 16 at the same size (global attention in every block,
its own random weights: a timing reference only), inference and one training step.

* ``eva02_b``: detrex's ``dino_eva_02_vitdet_b`` backbone (768-d, 12 blocks, window 16, global
  blocks 2, 5, 8, 11, rope, SwiGLU + sub-LN) at ``--size`` (512 by default; detrex's rope tables
  are built for ``img_size``, so it is built at that size);
* ``eva01_b``: detrex's ``dino_eva_01`` backbone (window 14, relative positions, q/v biases).

Runs are paired (every model once per round, rotating order); ratios are medians of per-round
ratios to detrex's. The machine is usually shared: say so next to any figure.

    python benchmarks/bench_detrex_eva.py [--quick] [--threads 2] [--size 512] [--out ...]
"""
import argparse
import os
import statistics
import sys
import warnings
from functools import partial

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
from benchlib import TrainStep, last_tensor, timed_rounds, write_report  # noqa: E402

WINDOWS = [0, 1, 3, 4, 6, 7, 9, 10]


def _models(kind: str, size: int) -> dict:
    import mmbackbones.detrex as ours
    if kind == 'eva02_b':
        from detrex.modeling.backbone.eva_02 import EVA02_ViT as Theirs
        kwargs = dict(img_size=size, window_size=16, window_block_indexes=WINDOWS)
        mine_cls = ours.EVA02_ViT
    else:
        from detrex.modeling.backbone.eva import EVAViT as Theirs
        kwargs = dict(img_size=size, window_size=14, window_block_indexes=WINDOWS,
                      use_rel_pos=True, norm_layer=partial(nn.LayerNorm, eps=1e-6))
        mine_cls = ours.EVAViT
    theirs, mine = Theirs(**kwargs), mine_cls(**kwargs)
    mine.load_state_dict(theirs.state_dict())
    models = {'detrex': (theirs, lambda x, m=theirs: m(x)['last_feat']),
              'ours': (mine, lambda x, m=mine: m(x)['last_feat'])}
    if kind == 'eva02_b':
        import timm
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            tm = timm.create_model('eva02_base_patch14_224', pretrained=False, img_size=size,
                                   patch_size=16, num_classes=0)
        models['timm'] = (tm, tm.forward_features)
    return models


def bench(kind: str, args) -> dict:
    models = _models(kind, args.size)
    x = torch.randn(args.batch, 3, args.size, args.size)
    for model, _ in models.values():
        model.eval()
    with torch.inference_mode():
        ref, got = (last_tensor(models[n][1](x)) for n in ('detrex', 'ours'))
    rounds, warmup = args.rounds or (2 if args.quick else 5), 1
    with torch.inference_mode():
        infer = timed_rounds({n: fn for n, (_, fn) in models.items()}, x, rounds, warmup)
    for model, _ in models.values():
        model.train()
    train = timed_rounds({n: TrainStep(m, fn) for n, (m, fn) in models.items()}, x,
                         max(1, rounds // 2), warmup)

    def ratio(times, name):
        return round(statistics.median(a / b for a, b in zip(times[name], times['detrex'])), 4)

    res = {name: dict(infer_median_ms=round(statistics.median(infer[name]) * 1e3, 1),
                      train_median_ms=round(statistics.median(train[name]) * 1e3, 1),
                      infer_vs_detrex=ratio(infer, name), train_vs_detrex=ratio(train, name))
           for name in models}
    return dict(size=args.size, batch=args.batch, rounds=rounds,
                max_abs_diff_vs_detrex=float((got - ref).abs().max()), models=res)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--only', choices=('eva02_b', 'eva01_b'), default=None)
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'detrex_eva.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = dict(benchmark='detrex_eva', device='cpu', threads=args.threads, quick=args.quick,
                  torch=torch.__version__, cpu_count=os.cpu_count(),
                  load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None)
    for kind in ('eva02_b', 'eva01_b'):
        if args.only in (None, kind):
            report[kind] = res = bench(kind, args)
            print(f'{kind} {res["size"]}px: max|diff| {res["max_abs_diff_vs_detrex"]:.2e}; ' +
                  '; '.join(f'{n} infer {r["infer_median_ms"]} ms ({r["infer_vs_detrex"]}x '
                            f'detrex), train {r["train_median_ms"]} ms '
                            f'({r["train_vs_detrex"]}x)' for n, r in res['models'].items()))
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
