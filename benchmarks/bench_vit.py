"""ViT-B/16 CPU latency (ours vs timm vs mmpretrain) and ViT-L/16 build+load time (ours vs timm).

Latency: batch 4, 224x224, fp32, ``torch.inference_mode``, the same weights everywhere (timm's
converted with ``convert_timm_vit``), outputs checked equal before timing:

* ``timm``: ``forward_features`` (all normalised tokens; its class-token feature is ``[:, 0]`` of
  it, so the same cost);
* ``ours_raw`` / ``mmpretrain``: ``out_type='raw'`` (the same work as timm's);
* ``ours_cls``: ``out_type='cls_token'`` (our default): the last layer computes only the class
  token's query and MLP, so it does less work than timm or mmpretrain for the same feature.

Runs are paired: each round times every model once in a rotating order, so drifts of a shared
machine hit all alike; reported are medians (wall clock and process CPU time) and ratios of
medians to timm's. On a machine shared with other jobs, the CPU-time ratios with ``--threads 1``
are the steadier figure.

Build+load: a ViT-L/16 checkpoint is saved once (timm names for timm, ours under ``backbone.``
for ours); then, alternating, ``timm.create_model('vit_large_patch16_224') + load_state_dict``
against ``VisionTransformer(arch='l', init_cfg=dict(type='Pretrained', ...)) + init_weights()``
(ours skips the random init the checkpoint overwrites). Medians of the repetitions.

    python benchmarks/bench_vit.py [--quick] [--threads 2] [--out benchmarks/results/vit.json]
"""
import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
from benchlib import timed_rounds, write_report  # noqa: E402


class _Last:
    """Callable returning the last output of a tuple-returning backbone."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        out = self.model(x)
        return out[-1] if isinstance(out, (tuple, list)) else out


def build_latency_models():
    import timm
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from mmpretrain.models.backbones.vision_transformer import VisionTransformer as MMPViT

    from mmbackbones.checkpoint.converters.timm_vit import convert_timm_vit
    from mmbackbones.models.backbones.vit import VisionTransformer

    tm = timm.create_model('vit_base_patch16_224', pretrained=False).eval()
    state = convert_timm_vit(tm.state_dict())
    ours = VisionTransformer(arch='b', img_size=224, patch_size=16, out_type='raw').eval()
    ours.load_state_dict(state, strict=True)
    ours_cls = VisionTransformer(arch='b', img_size=224, patch_size=16, out_type='cls_token')
    ours_cls.load_state_dict(state, strict=True)
    ours_cls.eval()
    mmp = MMPViT(arch='b', img_size=224, patch_size=16, out_type='raw')
    mmp.load_state_dict(state, strict=True)
    mmp.eval()
    return {'timm': tm.forward_features, 'ours_raw': _Last(ours), 'ours_cls': _Last(ours_cls),
            'mmpretrain': _Last(mmp)}


def bench_latency(args) -> dict:
    rounds = args.rounds or (3 if args.quick else 12)
    warmup = 1 if args.quick else 2
    runners = build_latency_models()
    x = torch.randn(args.batch, 3, 224, 224)
    with torch.inference_mode():
        ref = runners['timm'](x)
        max_diff = {}
        for name, fn in runners.items():
            out = fn(x)
            max_diff[name] = float((out - (ref[:, 0] if out.dim() == 2 else ref)).abs().max())
    names = list(runners)
    with torch.inference_mode():  # paired rounds, rotating who goes first
        both = timed_rounds(runners, x, rounds, warmup,
                            clock={'wall': time.perf_counter, 'cpu': time.process_time})
    wall, cpu = both['wall'], both['cpu']
    med = {name: statistics.median(t) for name, t in wall.items()}
    med_cpu = {name: statistics.median(t) for name, t in cpu.items()}

    def paired(name, times):  # median over rounds of (name / timm) within the round
        return round(statistics.median(a / b for a, b in zip(times[name], times['timm'])), 4)

    results = {name: dict(median_ms=round(med[name] * 1e3, 2),
                          min_ms=round(min(wall[name]) * 1e3, 2),
                          max_ms=round(max(wall[name]) * 1e3, 2),
                          cpu_median_ms=round(med_cpu[name] * 1e3, 2),
                          ratio_vs_timm=round(med[name] / med['timm'], 4),
                          paired_ratio_vs_timm=paired(name, wall),
                          cpu_ratio_vs_timm=round(med_cpu[name] / med_cpu['timm'], 4),
                          cpu_paired_ratio_vs_timm=paired(name, cpu),
                          max_abs_diff_vs_timm=max_diff[name]) for name in names}
    return dict(batch=args.batch, size=224, rounds=rounds, models=results)


def bench_build_load(args) -> dict:
    import timm

    from mmbackbones.checkpoint.converters.timm_vit import convert_timm_vit
    from mmbackbones.models.backbones.vit import VisionTransformer

    reps = args.load_reps or (1 if args.quick else 3)
    tmp = tempfile.mkdtemp(prefix='bench_vit_')
    try:
        src = timm.create_model('vit_large_patch16_224', pretrained=False)
        timm_path = os.path.join(tmp, 'timm_vit_l.pth')
        ours_path = os.path.join(tmp, 'ours_vit_l.pth')
        torch.save(src.state_dict(), timm_path)
        torch.save({'state_dict': {f'backbone.{k}': v
                                   for k, v in convert_timm_vit(src.state_dict()).items()}},
                   ours_path)
        probe = torch.randn(1, 3, 224, 224)
        with torch.inference_mode():
            ref = src.forward_features(probe)
        del src
        gc.collect()

        def run_timm():
            model = timm.create_model('vit_large_patch16_224', pretrained=False)
            model.load_state_dict(torch.load(timm_path, map_location='cpu', weights_only=True))
            return model

        def run_ours():
            model = VisionTransformer(arch='l', out_type='raw', init_cfg=dict(
                type='Pretrained', checkpoint=ours_path, prefix='backbone'))
            model.init_weights()
            return model

        def run_ours_random():  # for reference: our build with a random init, no checkpoint
            return VisionTransformer(arch='l', out_type='raw')

        def run_timm_random():
            return timm.create_model('vit_large_patch16_224', pretrained=False)

        fns = {'timm_build_load': run_timm, 'ours_build_load': run_ours,
               'timm_build_only': run_timm_random, 'ours_build_only_random_init': run_ours_random}
        # check once that both load the same weights
        checks = {}
        for name in ('timm_build_load', 'ours_build_load'):
            model = fns[name]().eval()
            with torch.inference_mode():
                out = model.forward_features(probe) if name.startswith('timm') else \
                    model(probe)[-1]
            checks[name] = float((out - ref).abs().max())
            del model
            gc.collect()
        both = timed_rounds({name: (lambda _, fn=fn: fn()) for name, fn in fns.items()}, None,
                            reps, 0, clock={'wall': time.perf_counter, 'cpu': time.process_time},
                            before=gc.collect)
        times, cpu = both['wall'], both['cpu']
        med = {name: statistics.median(t) for name, t in times.items()}
        med_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dict(model='vit_large_patch16_224', reps=reps,
                median_s={k: round(v, 3) for k, v in med.items()},
                cpu_median_s={k: round(v, 3) for k, v in med_cpu.items()},
                ours_over_timm=round(med['ours_build_load'] / med['timm_build_load'], 4),
                cpu_ours_over_timm=round(med_cpu['ours_build_load'] /
                                         med_cpu['timm_build_load'], 4),
                max_abs_diff_vs_source=checks)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer rounds (smoke run)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--load-reps', type=int, default=None)
    parser.add_argument('--skip-load', action='store_true', help='latency only')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results', 'vit.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    latency = bench_latency(args)
    print(f'ViT-B/16, batch {args.batch}, 224x224, fp32, CPU, {args.threads} threads, '
          f'{latency["rounds"]} paired rounds')
    print(f'{"model":12s} {"median ms":>10s} {"min ms":>8s} {"vs timm":>8s} {"paired":>7s} '
          f'{"cpu ms":>8s} {"cpu vs":>7s} {"cpu pair":>8s} {"max|diff|":>10s}')
    for name, res in latency['models'].items():
        print(f'{name:12s} {res["median_ms"]:10.1f} {res["min_ms"]:8.1f} '
              f'{res["ratio_vs_timm"]:8.3f} {res["paired_ratio_vs_timm"]:7.3f} '
              f'{res["cpu_median_ms"]:8.1f} {res["cpu_ratio_vs_timm"]:7.3f} '
              f'{res["cpu_paired_ratio_vs_timm"]:8.3f} {res["max_abs_diff_vs_timm"]:10.2e}')
    report = dict(benchmark='vit', dtype='float32', device='cpu', threads=args.threads,
                  quick=args.quick, torch=torch.__version__, machine=platform.machine(),
                  cpu_count=os.cpu_count(),
                  load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None,
                  latency_vit_b16=latency)
    if not args.skip_load:
        load = bench_build_load(args)
        report['build_load_vit_l16'] = load
        print(f'ViT-L/16 build + load of a full checkpoint ({load["reps"]} reps, median s):')
        print(f'  {"":30s} {"wall s":>8s} {"cpu s":>8s}')
        for name, sec in load['median_s'].items():
            print(f'  {name:30s} {sec:8.3f} {load["cpu_median_s"][name]:8.3f}')
        print(f'ours/timm build+load: wall {load["ours_over_timm"]:.3f}, '
              f'cpu {load["cpu_ours_over_timm"]:.3f}')
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
