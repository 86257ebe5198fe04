"""The modern ViT on CPU: ViTDet-B (windowed attention, relative positions) and DINOv2-S/14 at
518 px, ours against timm (and detectron2's ``ViT`` when importable), inference and one training
step; and ViT-L built with a Pretrained ``init_cfg`` + ``init_weights()`` against timm's
``create_model`` + ``load_state_dict`` of the same weights, alternating in one process.

* ``vitdet_b``: ViT-B/16 at 512x512 (a 32x32 grid; ``--vitdet-size``), window 14 (padded to
  42), global attention in blocks 2, 5, 8, 11, decomposed relative positions: ours
  (detectron2's weights through the ``detectron2_vit`` converter, outputs checked equal) vs detectron2's ``ViT`` and timm's
  ``samvit_base_patch16`` (SAM's image encoder: the same blocks; its neck replaced by identity,
  its own random weights: timing only).
* ``dinov2_s``: ``vit_small_patch14_dinov2`` at 518x518 (37x37 grid) vs ours with timm's weights
  through the converter (outputs checked equal), ``out_type='raw'`` (all normalised tokens, the
  same work as timm's ``forward_features``).
* ``build_load_vit_l``: as ``bench_vit.py``, plus the first forward after the load (what a lazy
  load would only postpone is counted there), and ``ours_copy_route`` (the same model through
  mmengine's plain ``init_weights``: the checkpoint copied into the parameters, as before the
  blocks adopted the checkpoint's tensors).

Runs are paired (every model once per round, rotating order); ratios are medians of per-round
ratios to timm's. The machine is usually shared: say so next to any figure.

    python benchmarks/bench_vit_modern.py [--quick] [--threads 2] [--out ...]
"""
import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from functools import partial

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
from benchlib import TrainStep, last_tensor, timed_rounds, write_report  # noqa: E402


def _vitdet_models(size=512):
    import timm

    from mmbackbones.checkpoint.converters.detectron2_vit import convert_detectron2_vit
    from mmbackbones.models.backbones.vit import VisionTransformer
    ours = VisionTransformer(arch='b', img_size=224, patch_size=16, with_cls_token=False,
                             final_norm=False, out_type='featmap', window_size=14,
                             window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10], use_rel_pos=True,
                             rel_pos_size=size // 16)
    models = {}
    try:
        from detectron2.modeling.backbone.vit import ViT
        d2 = ViT(img_size=size, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                 window_size=14, window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],
                 use_rel_pos=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                 out_feature='last_feat')
        ours.load_state_dict(convert_detectron2_vit(
            {'net.' + k: v for k, v in d2.state_dict().items()}))
        models['detectron2'] = (d2, lambda x, m=d2: m(x)['last_feat'])
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        sam = timm.create_model('samvit_base_patch16', pretrained=False, img_size=size)
    sam.neck = nn.Identity()
    models['timm'] = (sam, sam.forward_features)
    models['ours'] = (ours, lambda x, m=ours: m(x)[-1])
    return models, size


def _dinov2_models():
    import timm

    from mmbackbones.checkpoint.converters.timm_vit import convert_timm_vit
    from mmbackbones.models.backbones.vit import VisionTransformer
    tm = timm.create_model('vit_small_patch14_dinov2', pretrained=False)
    ours = VisionTransformer(arch='dinov2-small', out_type='raw')
    ours.load_state_dict(convert_timm_vit(tm.state_dict()), strict=True)
    return {'timm': (tm, tm.forward_features), 'ours': (ours, lambda x, m=ours: m(x)[-1])}, 518


def _paired(times, name, anchor='timm'):
    return round(statistics.median(a / b for a, b in zip(times[name], times[anchor])), 4)


def bench_pair(build, args) -> dict:
    models, size = build()
    x = torch.randn(args.batch, 3, size, size)
    for model, _ in models.values():
        model.eval()
    with torch.inference_mode():
        outs = {name: last_tensor(fn(x)) for name, (_, fn) in models.items()}
    ref = outs.get('detectron2', outs['timm'])
    check = {name: float((o - ref).abs().max()) if o.shape == ref.shape else None
             for name, o in outs.items()}
    rounds, warmup = args.rounds or (2 if args.quick else 6), 1
    with torch.inference_mode():
        infer = timed_rounds({n: fn for n, (_, fn) in models.items()}, x, rounds, warmup)
    for model, _ in models.values():
        model.train()
    steps = {n: TrainStep(model, fn) for n, (model, fn) in models.items()}
    train = timed_rounds(steps, x, max(1, rounds // 2), warmup)
    res = {}
    for name in models:
        res[name] = dict(infer_median_ms=round(statistics.median(infer[name]) * 1e3, 1),
                         train_median_ms=round(statistics.median(train[name]) * 1e3, 1),
                         infer_vs_timm=_paired(infer, name), train_vs_timm=_paired(train, name),
                         max_abs_diff_vs_reference=check[name])
        if name == 'ours' and 'detectron2' in models:  # paired against detectron2 directly
            res[name].update(infer_vs_detectron2=_paired(infer, name, 'detectron2'),
                             train_vs_detectron2=_paired(train, name, 'detectron2'))
    return dict(size=size, batch=args.batch, rounds=rounds, models=res)


def bench_build_load(args) -> dict:
    import timm

    from mmbackbones.checkpoint.converters.timm_vit import convert_timm_vit
    from mmbackbones.models.backbones.vit import VisionTransformer
    reps = args.load_reps or (2 if args.quick else 3)
    tmp = tempfile.mkdtemp(prefix='bench_vit_modern_')
    try:
        src = timm.create_model('vit_large_patch16_224', pretrained=False)
        timm_path, ours_path = os.path.join(tmp, 'timm.pth'), os.path.join(tmp, 'ours.pth')
        torch.save(src.state_dict(), timm_path)
        torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                                   convert_timm_vit(src.state_dict()).items()}}, ours_path)
        probe = torch.randn(1, 3, 224, 224)
        with torch.inference_mode():
            ref = src.forward_features(probe)
        del src
        gc.collect()
        names = ['timm', 'ours', 'ours_copy_route']
        times = {k: [] for k in names}
        first = {k: [] for k in names}
        diff = {}
        for rep in range(reps):
            for name in names[rep % 3:] + names[:rep % 3]:
                gc.collect()
                start = time.perf_counter()
                if name == 'timm':
                    model = timm.create_model('vit_large_patch16_224', pretrained=False)
                    model.load_state_dict(torch.load(timm_path, map_location='cpu',
                                                     weights_only=True))
                    fn = model.forward_features
                else:
                    model = VisionTransformer(arch='l', out_type='raw', init_cfg=dict(
                        type='Pretrained', checkpoint=ours_path, prefix='backbone'))
                    if name == 'ours':
                        model.init_weights()
                    else:  # the route before adoption: mmengine's init, copy_ into the params
                        super(VisionTransformer, model).init_weights()
                    fn = lambda x, m=model: m(x)[-1]  # noqa: E731
                loaded = time.perf_counter()
                with torch.inference_mode():
                    out = fn(probe)
                done = time.perf_counter()
                times[name].append(loaded - start)
                first[name].append(done - start)
                diff[name] = float((out - ref).abs().max())
                del model, fn, out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = [o / t for o, t in zip(times['ours'], times['timm'])]
    ratio_first = [o / t for o, t in zip(first['ours'], first['timm'])]
    copy_ratio = [o / t for o, t in zip(times['ours_copy_route'], times['timm'])]
    return dict(reps=reps, build_load_s={k: [round(t, 3) for t in v] for k, v in times.items()},
                build_load_first_forward_s={k: [round(t, 3) for t in v]
                                            for k, v in first.items()},
                ours_over_timm=round(statistics.median(ratio), 4),
                ours_over_timm_with_first_forward=round(statistics.median(ratio_first), 4),
                copy_route_over_timm=round(statistics.median(copy_ratio), 4),
                max_abs_diff_vs_source=diff)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--load-reps', type=int, default=None)
    parser.add_argument('--vitdet-size', type=int, default=512,
                        help='ViTDet input side (a multiple of 16; 512 by default)')
    parser.add_argument('--only', choices=('vitdet', 'dinov2', 'load'), default=None)
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                      'vit_modern.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = dict(benchmark='vit_modern', device='cpu', threads=args.threads, quick=args.quick,
                  torch=torch.__version__, cpu_count=os.cpu_count(),
                  load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None)
    for key, build in (('vitdet', partial(_vitdet_models, args.vitdet_size)),
                       ('dinov2', _dinov2_models)):
        if args.only in (None, key):
            report[key] = res = bench_pair(build, args)
            print(f'{key} {res["size"]}px batch {res["batch"]}: ' + '; '.join(
                f'{n} infer {r["infer_median_ms"]} ms ({r["infer_vs_timm"]}x timm), train '
                f'{r["train_median_ms"]} ms ({r["train_vs_timm"]}x), max|diff| '
                f'{r["max_abs_diff_vs_reference"]}' for n, r in res['models'].items()))
            ours = res['models']['ours']
            if 'infer_vs_detectron2' in ours:
                print(f'  ours/detectron2: infer {ours["infer_vs_detectron2"]}, train step '
                      f'{ours["train_vs_detectron2"]}')
    if args.only in (None, 'load'):
        report['build_load_vit_l'] = load = bench_build_load(args)
        print(f'ViT-L build+load: {load["build_load_s"]}; ours/timm {load["ours_over_timm"]} '
              f'(with the first forward {load["ours_over_timm_with_first_forward"]}; the copy '
              f'route {load["copy_route_over_timm"]}); '
              f'max|diff| {load["max_abs_diff_vs_source"]}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
