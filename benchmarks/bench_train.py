"""Training-step cost: ours vs timm (forward + backward), channels_last, and ``with_cp``.

For each native family and its timm twin (drop-path off in both), one training step is: forward,
a scalar loss on the last feature map (``forward_features`` for timm), backward, gradients
dropped. ResNet-50 and ViT-B/16 hold the same weights in both (ResNet names are shared;
ViT through ``convert_timm_vit``); the other families keep their own random init (the same
architecture and FLOPs). Timing is per-thread CPU time (``time.thread_time``) with one thread,
in paired rounds with a rotating order (``benchlib.timed_rounds``); reported is the median of
the per-round ratios ours / timm with its quartiles: a median whose quartiles straddle 1.0 is
"on par".

Beside the main pairs:
* ``channels_last`` (CNNs): ours built with ``channels_last=True`` against timm converted with
  ``.to(memory_format=torch.channels_last)``, both fed a channels-last input;
* ``with_cp`` (ResNet-50, ViT-B/16): ours with gradient checkpointing against ours without,
  its time cost and what it saves in memory.
Memory per step (``benchlib.step_memory_mib``): tensors the forward leaves alive for backward
("activations") and the peak over forward + backward, parameters excluded.

On a GPU (``--device cuda``) every step is synchronised and timed on the wall clock;
``--autocast bf16`` runs the forwards under ``torch.autocast`` (the same for ours and timm).

    python benchmarks/bench_train.py [--quick] [--only resnet50,vit-b16] [--rounds N]
    python benchmarks/bench_train.py --device cuda [--autocast bf16] --rounds 20
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
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from benchlib import (AUTOCAST, TrainStep, add_device_arguments,  # noqa: E402
                      check_device_arguments, per_round_ratios, randomize_, ratio_summary,
                      step_memory_mib, synced, timed_rounds)

# name: (our config, timm model name, batch, side, CNN?). Our configs return the last stage only.
FAMILIES = {
    'resnet50': (dict(type='ResNet', depth=50, out_indices=(3,)), 'resnet50', 4, 224, True),
    'vit-b16': (dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16,
                     out_type='raw'), 'vit_base_patch16_224', 2, 224, False),
    'convnext-t': (dict(type='ConvNeXt', arch='tiny', out_indices=(3,), drop_path_rate=0.),
                   'convnext_tiny', 2, 224, True),
    'swin-t': (dict(type='SwinTransformer', arch='tiny', out_indices=(3,), drop_path_rate=0.),
               'swin_tiny_patch4_window7_224', 2, 224, False),
    'regnetx-4.0gf': (dict(type='RegNet', arch='regnetx_4.0gf', out_indices=(3,)),
                      'regnetx_040', 2, 224, True),
    'cspresnext50': (dict(type='CSPResNeXt', depth=50, out_indices=(3,)), 'cspresnext50', 2,
                     224, True),
}
WITH_CP = ('resnet50', 'vit-b16')
# families whose timm weights load into ours (the others compare two random inits)
SAME_WEIGHTS = ('vit-b16', 'convnext-t', 'swin-t', 'regnetx-4.0gf')


def build_pair(name: str, **our_kwargs):
    """``(ours, timm_model)`` in train mode, with the same weights where the names allow."""
    import timm

    from mmbackbones import build_backbone
    cfg, timm_name = FAMILIES[name][:2]
    tm = timm.create_model(timm_name, pretrained=False, drop_path_rate=0.).train()
    ours = build_backbone(dict(cfg, **our_kwargs))
    if name == 'resnet50':
        tm.load_state_dict(randomize_(ours), strict=False)
    elif name in SAME_WEIGHTS:
        # timm's own weights through our converter: the same numbers flow through both models
        # (random inits differ in scale, and e.g. peakier attention softmaxes make denormals)
        from mmbackbones.checkpoint.converters import convert_state_dict
        state, wanted = convert_state_dict(tm.state_dict(), 'timm')[0], ours.state_dict()
        ours.load_state_dict({k: v for k, v in state.items() if k in wanted})  # no timm head
    return ours.train(), tm


def check_same(ours, tm, x) -> float:
    """Max |ours - timm| of the last feature (only meaningful where weights are shared)."""
    with torch.no_grad():
        a = ours(x)[-1]
        b = tm.forward_features(x)
    if b.dim() == 4 and a.shape != b.shape and b.permute(0, 3, 1, 2).shape == a.shape:
        b = b.permute(0, 3, 1, 2)  # timm's Swin returns NHWC
    if a.dim() == 2 and b.dim() == 4:  # ConvNeXt: ours pools then norms, which timm's head does
        with torch.no_grad():
            b = tm.forward_head(b, pre_logits=True)
    return float((a - b).abs().max()) if a.shape == b.shape else float('nan')


def bench_family(name: str, args) -> dict:
    _, _, batch, side, cnn = FAMILIES[name]
    torch.manual_seed(0)
    device, amp = torch.device(args.device), AUTOCAST[args.autocast]
    ours, tm = (m.to(device) for m in build_pair(name))
    x = torch.randn(batch, 3, side, side, device=device)
    steps = {'ours': TrainStep(ours, autocast=amp),
             'timm': TrainStep(tm, tm.forward_features, autocast=amp)}
    if cnn and not args.no_channels_last:
        ours_cl, tm_cl = build_pair(name, channels_last=True) if name == 'resnet50' else \
            (None, None)
        if ours_cl is not None:  # only ResNet has our channels_last switch
            ours_cl.load_state_dict(ours.state_dict())
            tm_cl.load_state_dict(tm.state_dict())
            ours_cl, tm_cl = ours_cl.to(device), tm_cl.to(device, memory_format=torch.channels_last)
            steps['ours_channels_last'] = TrainStep(ours_cl, autocast=amp)
            steps['timm_channels_last'] = TrainStep(tm_cl, tm_cl.forward_features, autocast=amp)
    if name in WITH_CP and not args.no_with_cp:
        ours_cp = build_pair(name, with_cp=True)[0].to(device)
        ours_cp.load_state_dict(ours.state_dict())
        steps['ours_with_cp'] = TrainStep(ours_cp, autocast=amp)
    same = check_same(ours, tm, x) if name == 'resnet50' or name in SAME_WEIGHTS else None
    x_cl = x.contiguous(memory_format=torch.channels_last)
    runners = {k: synced(lambda _, s=s, k=k: s(x_cl if k.endswith('channels_last') else x),
                         device) for k, s in steps.items()}
    # CPU: this thread's CPU time (immune to other processes); a GPU runs asynchronously, so
    # there each step is synchronised and timed on the wall clock
    clock = time.perf_counter if device.type == 'cuda' else time.thread_time
    times = timed_rounds(runners, x, args.rounds, args.warmup, clock=clock)
    row = dict(name=name, timm=FAMILIES[name][1], batch=batch, side=side,
               max_abs_diff=same,
               median_s={k: round(statistics.median(v), 4) for k, v in times.items()},
               ratio_vs_timm=ratio_summary(per_round_ratios(times, 'ours', 'timm')))
    if 'ours_channels_last' in times:
        row['channels_last_ratio_vs_timm_channels_last'] = ratio_summary(
            per_round_ratios(times, 'ours_channels_last', 'timm_channels_last'))
        row['channels_last_ratio_vs_ours_nchw'] = ratio_summary(
            per_round_ratios(times, 'ours_channels_last', 'ours'))
    if 'ours_with_cp' in times:
        row['with_cp_time_ratio'] = ratio_summary(per_round_ratios(times, 'ours_with_cp',
                                                                   'ours'))
    if not args.no_memory:
        row['memory_mib'] = {k: step_memory_mib(s, x_cl if k.endswith('channels_last') else x)
                             for k, s in steps.items()}
    return row


def print_row(row: dict) -> None:
    r = row['ratio_vs_timm']
    mem = row.get('memory_mib', {})
    fmt_mem = (lambda k: f"{mem[k]['activations']:.0f}/{mem[k]['peak']:.0f}" if k in mem else '-')
    print(f"{row['name']:14s} ours/timm {r['median']:.3f} [{r['q1']:.3f}, {r['q3']:.3f}]  "
          f"s/step ours {row['median_s']['ours']:.2f} timm {row['median_s']['timm']:.2f}  "
          f"MiB act/peak ours {fmt_mem('ours')} timm {fmt_mem('timm')}", flush=True)
    if 'channels_last_ratio_vs_timm_channels_last' in row:
        a = row['channels_last_ratio_vs_timm_channels_last']
        b = row['channels_last_ratio_vs_ours_nchw']
        print(f"{'':14s} channels_last ours/timm {a['median']:.3f} [{a['q1']:.3f}, "
              f"{a['q3']:.3f}], ours NHWC/NCHW {b['median']:.3f}  MiB act/peak "
              f"{fmt_mem('ours_channels_last')}", flush=True)
    if 'with_cp_time_ratio' in row:
        c = row['with_cp_time_ratio']
        print(f"{'':14s} with_cp time x{c['median']:.3f} [{c['q1']:.3f}, {c['q3']:.3f}]  "
              f"MiB act/peak {fmt_mem('ours_with_cp')} (without: {fmt_mem('ours')})",
              flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer rounds, ResNet-50 and ViT')
    parser.add_argument('--only', default='', help=f'comma-separated of {sorted(FAMILIES)}')
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--warmup', type=int, default=None)
    parser.add_argument('--threads', type=int, default=1)
    add_device_arguments(parser)
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument('--no-channels-last', action='store_true')
    parser.add_argument('--no-with-cp', action='store_true')
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'train.json'))
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 9)
    args.warmup = args.warmup or 1
    check_device_arguments(parser, args)
    torch.set_num_threads(args.threads)
    default = 'resnet50,vit-b16' if args.quick else ','.join(FAMILIES)
    wanted = [n for n in (args.only or default).split(',') if n]
    unknown = sorted(set(wanted) - set(FAMILIES))
    if unknown:
        parser.error(f'--only: unknown {unknown}; known: {sorted(FAMILIES)}')
    clock = 'wall clock (synchronised)' if args.device == 'cuda' else 'thread CPU time'
    precision = 'fp32' if args.autocast == 'none' else f'{args.autocast} autocast'
    print(f'training step (forward+backward), {precision} {args.device}, {args.threads} '
          f'thread(s), {clock}, {args.rounds} paired rounds; ratio = median [quartiles] of '
          f'per-round ratios')
    rows = []
    for name in wanted:
        rows.append(bench_family(name, args))
        print_row(rows[-1])
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(benchmark='train_step', time=time.strftime('%Y-%m-%dT%H:%M:%S'),
                       torch=torch.__version__, machine=platform.machine(),
                       device=args.device, autocast=args.autocast, threads=args.threads,
                       clock='wall_synchronized' if args.device == 'cuda' else 'thread_time',
                       rounds=args.rounds,
                       load_average=os.getloadavg(), rows=rows), f, indent=2)
    print(f'wrote {args.out}')
    return rows


if __name__ == '__main__':
    main()
