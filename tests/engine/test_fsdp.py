"""FSDP2 (``fully_shard``) training of our backbones with two gloo processes on CPU.

Each rank shards the model (one unit per transformer block / residual stage, then the root),
runs a step on its own data, and checks against an unsharded copy run in the same process on
both ranks' data: the full gradients (``DTensor.full_tensor()``) equal the single-process
average, each rank holds about half of the parameters, and a full state dict saved from the
sharded run (after an optimizer step) loads into an unsharded model through our loader.
"""
import datetime
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmbackbones import build_backbone
from mmbackbones.integrations.fsdp import fsdp_units, fully_shard_backbone

CONFIGS = {
    'vit': (dict(type='VisionTransformer', img_size=32, patch_size=8, out_type='featmap',
                 out_indices=(0, 1), arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                               feedforward_channels=128)),
            (2, 3, 32, 32)),
    'resnet': (dict(type='ResNet', depth=18, base_channels=16, stem_channels=16,
                    out_indices=(1, 3), frozen_stages=1), (2, 3, 64, 64)),
}


def _loss(outs):
    return sum(out.float().pow(2).mean() for out in outs)


def _worker(rank, world_size, init_file, name, ckpt_path, result_path):
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from mmbackbones.checkpoint import save_file
    torch.set_num_threads(1)
    warnings.simplefilter('ignore')  # FSDP2's note about a root output that is a view
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(minutes=10))
    errors = []
    try:
        cfg, shape = CONFIGS[name]
        torch.manual_seed(0)
        reference = build_backbone(cfg).train()
        model = build_backbone(cfg).train()
        model.load_state_dict(reference.state_dict())
        full_numel = sum(p.numel() for p in model.parameters())
        fully_shard_backbone(model)
        local_numel = sum(p.to_local().numel() for p in model.parameters())
        shares = [torch.tensor([local_numel / full_numel]) for _ in range(world_size)]
        dist.all_gather(shares, torch.tensor([local_numel / full_numel]))

        inputs = [torch.randn(*shape, generator=torch.Generator().manual_seed(100 + r))
                  for r in range(world_size)]
        _loss(model(inputs[rank])).backward()
        # one process, every rank's batch in its own forward (BN statistics stay per batch),
        # the loss averaged as FSDP averages gradients across ranks
        (sum(_loss(reference(x)) for x in inputs) / world_size).backward()
        ref = dict(reference.named_parameters())
        for key, param in model.named_parameters():
            if param.grad is None or ref[key].grad is None:
                if (param.grad is None) != (ref[key].grad is None):
                    errors.append(f'{key}: gradient present in only one run')
                continue
            if not torch.allclose(param.grad.full_tensor(), ref[key].grad, rtol=1e-4,
                                  atol=1e-6):
                errors.append(f'{key}: gradient differs from the single-process run')

        trainable = [p for p in model.parameters() if p.requires_grad]
        torch.optim.SGD(trainable, lr=0.1).step()
        torch.optim.SGD([p for p in reference.parameters() if p.requires_grad], lr=0.1).step()
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                     cpu_offload=True))
        if rank == 0:
            save_file(state, ckpt_path)
        dist.barrier()
        loaded = build_backbone(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=ckpt_path,
                                                        strict=True)))
        loaded.init_weights()
        for key, value in reference.named_parameters():
            if not torch.allclose(loaded.state_dict()[key], value, rtol=1e-4, atol=1e-6):
                errors.append(f'{key}: reloaded checkpoint differs from the trained weights')
        with open(f'{result_path}.{rank}', 'w') as f:
            f.write(' '.join(f'{float(s):.4f}' for s in shares) + '\n' + '\n'.join(errors))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_fsdp2_two_processes_matches_single_process(tmp_path, name):
    ckpt, result = str(tmp_path / 'model.safetensors'), str(tmp_path / 'result')
    mp.start_processes(_worker, args=(2, str(tmp_path / 'rendezvous'), name, ckpt, result),
                       nprocs=2, start_method='spawn', join=True)
    for rank in range(2):
        with open(f'{result}.{rank}') as f:
            shares, *errors = f.read().splitlines()
        assert not [e for e in errors if e], f'rank {rank}: {errors[:5]}'
        shares = [float(s) for s in shares.split()]
        assert abs(sum(shares) - 1.0) < 1e-6, shares  # the shards partition the parameters
        assert all(0.4 < s < 0.6 for s in shares), f'per-rank parameter share {shares}'


def test_fsdp_units_are_the_stages():
    vit = build_backbone(CONFIGS['vit'][0])
    assert fsdp_units(vit) == list(vit.layers)
    resnet = build_backbone(CONFIGS['resnet'][0])
    assert fsdp_units(resnet) == [resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4]
    with pytest.raises(TypeError, match='stem_and_stages'):
        fsdp_units(torch.nn.Linear(2, 2))
