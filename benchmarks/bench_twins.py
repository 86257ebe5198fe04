"""Twins PCPVT/SVT: ours vs mmseg's PCPVT/SVT (through our mmseg twin) and timm's twins_*,
inference and a training step, in one run.

Same network, same weights: ours (``mmbackbones.mmseg.<Type>``, mmseg's arguments) randomized,
written into mmseg's layout (``revert_mmseg_twins``) and into timm's (``revert_timm_twins``;
ours with a norm after the last stage only, as timm). Outputs are checked against mmseg's before
timing; runs are paired and rotated (see bench_pvt.py, whose harness this uses). mmseg's own
configs: qkv bias, drop path 0.2, SVT with stage norms. timm is timed on ``forward_features``.

Needs mmseg (the downstream venv; timm optional):

    .venv-downstream/bin/python benchmarks/bench_twins.py [--quick] [--archs pcpvt-s svt-s]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pvt import parse, print_results, report_of, run_models  # noqa: E402
from benchlib import LastOutput, randomize_, write_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
_LONG = {'s': 'small', 'b': 'base', 'l': 'large'}


def build_models(arch: str, device: torch.device) -> dict:
    """``{'ours', 'mmseg'[, 'timm']}`` with identical weights; ``arch`` ``'pcpvt-s'``.."""
    import mmseg.models  # noqa: F401 - registers
    from mmseg.registry import MODELS

    from mmbackbones.checkpoint.converters.mmseg_twins import revert_mmseg_twins
    from mmbackbones.compat import MMSegPCPVT, MMSegSVT
    kind, size = arch.split('-')
    core = (MMSegPCPVT if kind == 'pcpvt' else MMSegSVT).__mro__[1]
    row = core.arch_zoo[_LONG[size]]
    kwargs = dict(embed_dims=row['embed_dims'], depths=row['depths'],
                  num_heads=row['num_heads'], mlp_ratios=row['mlp_ratios'],
                  sr_ratios=row['sr_ratios'], qkv_bias=True, drop_path_rate=0.2,
                  norm_after_stage=kind == 'svt')
    if kind == 'svt':
        kwargs['windiow_sizes'] = row['window_sizes']
    twin = MMSegPCPVT if kind == 'pcpvt' else MMSegSVT
    ours = twin(**kwargs)
    state = randomize_(ours)
    theirs = MODELS.build(dict(type=kind.upper(), _scope_='mmseg', **kwargs))
    theirs.load_state_dict(revert_mmseg_twins(state))
    models = {'ours': ours, 'mmseg': theirs}
    try:
        import timm
    except ImportError:
        timm = None
    if timm is not None:
        from mmbackbones.checkpoint.converters.timm_twins import revert_timm_twins
        reference = timm.create_model(f'twins_{kind}_{_LONG[size]}', pretrained=False,
                                      drop_path_rate=0.2)
        timm_like = core(arch=_LONG[size], out_indices=(0, 1, 2, 3), qkv_bias=True,
                         drop_path_rate=0.2, norm_after_stage=[False] * 3 + [True])
        merged = timm_like.state_dict()  # ours' weights; timm's last norm kept if ours has none
        merged.update({k: v for k, v in state.items() if k in merged})
        timm_like.load_state_dict(merged)
        reference.load_state_dict(revert_timm_twins(timm_like.state_dict()), strict=False)
        models['timm'] = LastOutput(reference, 'forward_features')
    return {k: m.to(device) for k, m in models.items()}


def main(argv=None) -> dict:
    args = parse(argv, __doc__, ['pcpvt-s', 'svt-s'], 'twins.json', out_option='--out')
    device = torch.device(args.device)
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    results = {arch: run_models(build_models(arch, device), 'mmseg', args, device)
               for arch in args.archs}
    report = report_of('twins', args, results, load_before)
    print(f'Twins {args.archs}, batch {args.batch}, {args.size}x{args.size}, {args.device} '
          f'{args.autocast}, {args.threads} threads, {args.rounds} paired rounds (load average '
          f'{load_before} -> {report["load_average_after"]})')
    print_results('Twins', results)
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
