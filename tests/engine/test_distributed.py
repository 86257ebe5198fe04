"""Two-process DDP training (gloo, CPU) of our backbones without find_unused_parameters."""
import datetime
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

from mmbackbones import build_backbone

CONFIGS = {
    'resnet': (dict(type='ResNet', depth=18, out_indices=(0, 1, 2), frozen_stages=1, with_cp=True),
               (2, 3, 64, 64)),
    'vit': (dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=8,
                 out_indices=(1, 2), frozen_stages=1, with_cp=True, out_type='featmap'),
            (2, 3, 32, 32)),
}


def _worker(rank, world_size, init_file, name, ckpt_path, result_path):
    torch.set_num_threads(1)
    # A file rendezvous (no port to race for) and a long timeout: CI machines can be loaded.
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(minutes=10))
    try:
        torch.manual_seed(0)  # same initial weights on every rank
        cfg, shape = CONFIGS[name]
        model = DDP(build_backbone(cfg).train())  # find_unused_parameters=False (default)
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
        torch.manual_seed(100 + rank)  # different data per rank
        for _ in range(3):
            outs = model(torch.randn(*shape))
            loss = sum(out.float().pow(2).mean() for out in outs)
            optimizer.zero_grad()
            loss.backward()
            grads = torch.cat([p.grad.flatten() for p in model.parameters()
                               if p.requires_grad])
            gathered = [torch.empty_like(grads) for _ in range(world_size)]
            dist.all_gather(gathered, grads)
            if not torch.allclose(gathered[0], gathered[1], atol=1e-6):
                raise RuntimeError('gradients differ across ranks')
            if any(p.grad is not None for p in model.parameters() if not p.requires_grad):
                raise RuntimeError('a frozen parameter received a gradient')
            optimizer.step()
        if rank == 0:
            torch.save(model.module.state_dict(), ckpt_path)
        dist.barrier()
        reloaded = build_backbone(cfg)
        reloaded.load_state_dict(torch.load(ckpt_path, weights_only=True))
        # Every rank holds the same parameters; BN buffers are rank 0's (DDP broadcasts them
        # at each forward), so the full state dict is compared on rank 0 only.
        ours = model.module.state_dict() if rank == 0 else dict(model.module.named_parameters())
        theirs = reloaded.state_dict()
        same = all(torch.equal(value, theirs[key]) for key, value in ours.items())
        params = torch.cat([p.detach().flatten() for p in model.module.parameters()])
        gathered = [torch.empty_like(params) for _ in range(world_size)]
        dist.all_gather(gathered, params)
        with open(f'{result_path}.{rank}', 'w') as f:
            f.write(f'{int(same)} {int(torch.equal(gathered[0], gathered[1]))}')
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_ddp_two_processes(tmp_path, name):
    ckpt, result = str(tmp_path / 'model.pth'), str(tmp_path / 'result')
    mp.start_processes(_worker, args=(2, str(tmp_path / 'rendezvous'), name, ckpt, result), nprocs=2,
                       start_method='spawn', join=True)
    for rank in range(2):
        with open(f'{result}.{rank}') as f:
            reloaded_same, params_same = f.read().split()
        assert reloaded_same == '1', f'rank {rank}: checkpoint did not reload exactly'
        assert params_same == '1', 'parameters diverged across ranks'


def test_syncbn_builds_and_runs_on_cpu():
    model = build_backbone(dict(type='ResNet', depth=18, norm_cfg=dict(type='SyncBN'),
                                out_indices=(3,)))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    model.train()  # no process group: local batch statistics, like BN (see README)
    assert model(torch.randn(2, 3, 64, 64))[0].shape == (2, 512, 2, 2)
    model.eval()
    assert model(torch.randn(1, 3, 64, 64))[0].shape == (1, 512, 2, 2)
