"""FSDP2 on CPU: ViT-L/16 and ResNet-152 trained sharded over 2 gloo processes.

Phase 1 (2 processes): build the model (same seed on both ranks), ``fully_shard_backbone`` (one
unit per transformer block / residual stage, then the root), one forward+backward on each
rank's own batch, then an SGD step. Rank 0 writes the full gradients (``full_tensor()``) and the
full state dict after the step (``get_model_state_dict(full_state_dict=True)``); every rank
reports the bytes of its parameter shards and its step CPU time.
Phase 2 (this process, after phase 1 has exited): the same model unsharded, forward+backward on
both ranks' batches (the loss averaged as FSDP averages gradients), compared with the sharded
gradients; the same SGD step; the sharded run's checkpoint loaded into a fresh unsharded model
through ``init_cfg=dict(type='Pretrained', strict=True)`` and compared with the stepped weights.
Phase 3: whether mmengine's ``FlexibleRunner`` with ``FSDPStrategy`` runs on CPU.

    python benchmarks/bench_fsdp.py [--quick] [--models vit-l,resnet152] [--side 112]
"""
import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

MODELS = {
    'vit-l': dict(type='VisionTransformer', arch='l', patch_size=16, out_type='featmap'),
    'resnet152': dict(type='ResNet', depth=152, out_indices=(3,)),
    # --quick: the same code on small models
    'vit-s': dict(type='VisionTransformer', arch='deit-small', patch_size=16, out_type='featmap'),
    'resnet18': dict(type='ResNet', depth=18, out_indices=(3,)),
}
LR = 0.1


def _cfg(name, side):
    cfg = dict(MODELS[name])
    if cfg['type'] == 'VisionTransformer':
        cfg['img_size'] = side
    return cfg


def _batches(batch, side, world_size):
    return [torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(100 + r))
            for r in range(world_size)]


def _loss(outs):
    return sum(out.float().pow(2).mean() for out in outs)


def _shard_worker(rank, world_size, init_file, name, side, batch, workdir):
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from mmbackbones import build_backbone
    from mmbackbones.checkpoint import save_file
    from mmbackbones.integrations.fsdp import fully_shard_backbone
    torch.set_num_threads(1)
    warnings.simplefilter('ignore')
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(minutes=30))
    try:
        torch.manual_seed(0)
        model = build_backbone(_cfg(name, side)).train()
        full_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        fully_shard_backbone(model)
        local_bytes = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
        x = _batches(batch, side, world_size)[rank]
        start = time.thread_time()
        _loss(model(x)).backward()
        step_cpu = time.thread_time() - start
        grad_bytes = sum(p.grad.to_local().numel() * p.grad.element_size()
                         for p in model.parameters() if p.grad is not None)
        grads = {}
        for key, param in model.named_parameters():  # a collective: every rank gathers
            full = param.grad.full_tensor()
            if rank == 0:
                grads[key] = full
        if rank == 0:
            save_file(grads, os.path.join(workdir, 'grads.safetensors'))
        del grads
        torch.optim.SGD(model.parameters(), lr=LR).step()
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                     cpu_offload=True))
        if rank == 0:
            save_file(state, os.path.join(workdir, 'sharded_run.safetensors'))
        with open(os.path.join(workdir, f'rank{rank}.json'), 'w') as f:
            json.dump(dict(full_param_bytes=full_bytes, local_param_bytes=local_bytes,
                           local_grad_bytes=grad_bytes, step_cpu_s=step_cpu), f)
    finally:
        dist.destroy_process_group()


def _compare_reference(name, side, batch, workdir, world_size):
    from safetensors import safe_open

    from mmbackbones import build_backbone
    # one thread, as the ranks: a deep randomly initialised net at batch 1 amplifies rounding
    # (ResNet-152: 1 vs 2 threads alone changes early-layer gradients by 25%)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_backbone(_cfg(name, side)).train()
    (sum(_loss(model(x)) for x in _batches(batch, side, world_size)) / world_size).backward()
    worst, worst_global, bad, per_key = 0.0, 0.0, [], {}
    global_scale = max(float(p.grad.abs().max()) for p in model.parameters()) or 1.0
    with safe_open(os.path.join(workdir, 'grads.safetensors'), 'pt') as f:
        for key, param in model.named_parameters():
            sharded = f.get_tensor(key)
            scale = float(param.grad.abs().max()) or 1.0
            abs_diff = float((sharded - param.grad).abs().max())
            per_key[key] = (abs_diff / scale, scale)
            worst = max(worst, abs_diff / scale)
            worst_global = max(worst_global, abs_diff / global_scale)
            if abs_diff / scale > 1e-4:  # relative to this tensor's largest gradient entry
                bad.append(key)
    torch.optim.SGD(model.parameters(), lr=LR).step()
    model.zero_grad(set_to_none=True)
    # parameters only: BN running statistics saw one batch per rank there, two batches here
    stepped = {k: v.detach().clone() for k, v in model.named_parameters()}
    del model
    loaded = build_backbone(dict(_cfg(name, side), init_cfg=dict(
        type='Pretrained', checkpoint=os.path.join(workdir, 'sharded_run.safetensors'),
        strict=True)))
    loaded.init_weights()
    reload_max = max(float((v.detach() - stepped[k]).abs().max())
                     for k, v in loaded.named_parameters())
    return dict(grads_max_rel_diff=worst, grads_max_diff_vs_global_scale=worst_global,
                grads_not_close={k: per_key[k] for k in bad[:10]},
                grads_equal=not bad, reload_max_abs_diff=reload_max)


def bench_model(name, args):
    workdir = tempfile.mkdtemp(prefix=f'bench_fsdp_{name}_')
    start = time.perf_counter()
    mp.start_processes(_shard_worker, args=(2, os.path.join(workdir, 'rdv'), name, args.side,
                                            args.batch, workdir),
                       nprocs=2, start_method='spawn', join=True)
    ranks = []
    for r in range(2):
        with open(os.path.join(workdir, f'rank{r}.json')) as f:
            ranks.append(json.load(f))
    row = dict(model=name, side=args.side, batch_per_rank=args.batch,
               full_param_mib=ranks[0]['full_param_bytes'] / 2**20,
               per_rank_param_mib=[r['local_param_bytes'] / 2**20 for r in ranks],
               per_rank_param_share=[r['local_param_bytes'] / r['full_param_bytes']
                                     for r in ranks],
               per_rank_grad_mib=[r['local_grad_bytes'] / 2**20 for r in ranks],
               per_rank_step_cpu_s=[r['step_cpu_s'] for r in ranks])
    row.update(_compare_reference(name, args.side, args.batch, workdir, 2))
    row['wall_s'] = time.perf_counter() - start
    for file in os.listdir(workdir):
        os.remove(os.path.join(workdir, file))
    os.rmdir(workdir)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='small models (ViT-S, ResNet-18)')
    parser.add_argument('--models', default=None)
    parser.add_argument('--side', type=int, default=112)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--skip-flexible-runner', action='store_true')
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'fsdp.json'))
    args = parser.parse_args(argv)
    names = (args.models or ('vit-s,resnet18' if args.quick else 'vit-l,resnet152')).split(',')
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f'--models: unknown {unknown}; known: {sorted(MODELS)}')
    rows = []
    for name in names:
        row = bench_model(name, args)
        rows.append(row)
        print(f"{name}: {row['full_param_mib']:.0f} MiB of parameters; per rank "
              f"{', '.join(f'{m:.0f}' for m in row['per_rank_param_mib'])} MiB "
              f"(share {', '.join(f'{s:.3f}' for s in row['per_rank_param_share'])}); "
              f"gradients equal to one process: {row['grads_equal']} (max rel diff "
              f"{row['grads_max_rel_diff']:.1e} per tensor, "
              f"{row['grads_max_diff_vs_global_scale']:.1e} of the largest gradient; not "
              f"close (rel diff, tensor scale): {row['grads_not_close']}); "
              f"checkpoint from the sharded run reloads "
              f"unsharded: max |diff| {row['reload_max_abs_diff']:.1e}", flush=True)
    report = dict(benchmark='fsdp2_cpu_gloo', world_size=2, torch=torch.__version__,
                  machine=platform.machine(), time=time.strftime('%Y-%m-%dT%H:%M:%S'),
                  rows=rows)
    if not args.skip_flexible_runner:
        from fsdp_flexible_runner import try_flexible_runner
        report['mmengine_flexible_runner_fsdp'] = try_flexible_runner()
        print(f"mmengine FlexibleRunner + FSDPStrategy on CPU: "
              f"{report['mmengine_flexible_runner_fsdp']['summary']}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
    print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    sys.exit(main() and 0)
