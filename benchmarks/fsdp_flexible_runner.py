"""Does mmengine's ``FlexibleRunner`` with ``FSDPStrategy`` train one of our backbones on CPU?

Two processes (gloo, ``launcher='pytorch'`` environment variables), a tiny ViT inside an
mmengine ``BaseModel``, two iterations of ``runner.train()``. Returns what happened, with the
exception and where it was raised when it fails (used by bench_fsdp.py; runs on its own too).
"""
import json
import os
import socket
import sys
import tempfile
import traceback

import torch
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, port, workdir, preinit):
    from mmengine.model import BaseModel
    from mmengine.runner import FlexibleRunner

    from mmbackbones import build_backbone
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                      LOCAL_WORLD_SIZE='2', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    if preinit:  # a gloo group made here: mmengine's init_dist (cuda.set_device) is skipped
        import torch.distributed as dist
        dist.init_process_group('gloo', rank=rank, world_size=2)

    class Classifier(BaseModel):
        def __init__(self):
            super().__init__()
            self.backbone = build_backbone(dict(
                type='VisionTransformer', img_size=32, patch_size=8,
                arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)))

        def forward(self, inputs, data_samples=None, mode='loss'):
            feats = self.backbone(torch.stack(inputs) if isinstance(inputs, list) else inputs)
            return dict(loss=feats[-1].float().pow(2).mean())

    data = [dict(inputs=torch.randn(3, 32, 32)) for _ in range(8)]
    result = dict(rank=rank)
    try:
        runner = FlexibleRunner(
            model=Classifier(), work_dir=workdir, launcher='pytorch',
            strategy=dict(type='FSDPStrategy'),
            env_cfg=dict(dist_cfg=dict(backend='gloo')),
            train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                                  sampler=dict(type='DefaultSampler', shuffle=False),
                                  collate_fn=dict(type='default_collate')),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
            train_cfg=dict(by_epoch=False, max_iters=2), default_hooks=dict(checkpoint=None))
        runner.train()
        result.update(ok=True)
    except Exception as exc:  # the point is to report what fails
        frames = traceback.extract_tb(exc.__traceback__)
        where = [f'{os.path.relpath(f.filename, os.path.dirname(torch.__file__) + "/..")}'
                 f':{f.lineno} {f.name}' for f in frames[-4:]]
        result.update(ok=False, error=f'{type(exc).__name__}: {exc}'.splitlines()[0][:300],
                      where=where)
    with open(os.path.join(workdir, f'flex{rank}_{int(preinit)}.json'), 'w') as f:
        json.dump(result, f)


def _attempt(preinit: bool) -> dict:
    workdir = tempfile.mkdtemp(prefix='bench_fsdp_flex_')
    try:
        mp.start_processes(_worker, args=(_free_port(), workdir, preinit), nprocs=2,
                           start_method='spawn', join=True)
    except Exception as exc:  # a worker that died hard (the per-rank files say more)
        launch_error = f'{type(exc).__name__}: {exc}'.splitlines()[0][:300]
    else:
        launch_error = None
    ranks = []
    for rank in range(2):
        path = os.path.join(workdir, f'flex{rank}_{int(preinit)}.json')
        if os.path.exists(path):
            with open(path) as f:
                ranks.append(json.load(f))
    ok = len(ranks) == 2 and all(r['ok'] for r in ranks)
    summary = 'runs' if ok else (ranks[0].get('error') if ranks and not ranks[0]['ok']
                                 else launch_error or 'no result')
    return dict(ok=ok, summary=summary, ranks=ranks, launch_error=launch_error)


def try_flexible_runner() -> dict:
    """Two attempts: as documented (``launcher='pytorch'``, mmengine creates the process
    group), then with a gloo process group created before the runner (mmengine then skips its
    own ``init_dist``), to find the next obstacle."""
    attempts = {'as_documented': _attempt(False), 'gloo_group_made_first': _attempt(True)}
    ok = any(a['ok'] for a in attempts.values())
    def where(a):
        return a['ranks'][0]['where'][-3:] if a['ranks'] and not a['ok'] else ''
    summary = '; '.join(f'{k}: {a["summary"]} (at {where(a)})' for k, a in attempts.items())
    return dict(ok=ok, summary=summary, attempts=attempts)


if __name__ == '__main__':
    print(json.dumps(try_flexible_runner(), indent=2))
