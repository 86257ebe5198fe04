"""What frozen stages save in a training step, and a real mmdet Faster R-CNN step against mmdet.

1. Our ResNet-50 (batch 2, 224, ``norm_eval=True``) with ``frozen_stages`` -1, 1 (mmdet's
   default) and 3 (detectron2's ``freeze_at=4``: stem, res2, res3, res4; 4 would freeze every
   stage, leaving nothing of the backbone to train): step time ratio against -1 and the memory
   of the step (``benchlib.step_memory_mib``).
2. When mmdet is importable (the downstream venv): mmdet's ``faster-rcnn_r50_fpn_1x_coco``
   config built by mmdet's registry, once with mmdet's own ``ResNet`` and once with ours
   (``mmbackbones.ResNet``, same arguments: ``frozen_stages=1``, ``norm_eval=True``, the same
   weights), one training step each (``model.loss`` on a synthetic 1-image batch, backward):
   ratio ours / mmdet. Without mmdet this part is skipped with the reason.

Timing: thread CPU time, one thread, paired rotating rounds (``benchlib.timed_rounds``); the
random proposal sampling of RPN/RoI heads is re-seeded before every step, so both detectors do
the same work.

    python benchmarks/bench_frozen.py [--quick] [--skip-mmdet]
    .venv-downstream/bin/python benchmarks/bench_frozen.py      # with the mmdet part
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from benchlib import (TrainStep, per_round_ratios, randomize_, ratio_summary,  # noqa: E402
                      step_memory_mib, timed_rounds, write_report)

FROZEN = (-1, 1, 3)


def bench_ours(args) -> dict:
    from mmbackbones import build_backbone
    models, state = {}, None
    for k in FROZEN:
        model = build_backbone(dict(type='ResNet', depth=50, frozen_stages=k, norm_eval=True))
        if state is None:
            state = randomize_(model)
        model.load_state_dict(state)
        models[f'frozen_stages={k}'] = TrainStep(model.train())
    x = torch.randn(args.batch, 3, 224, 224)
    times = timed_rounds(models, x, args.rounds, 1, clock=time.thread_time)
    base = f'frozen_stages={FROZEN[0]}'
    return {name: dict(median_s=round(statistics.median(times[name]), 4),
                       time_ratio_vs_unfrozen=ratio_summary(per_round_ratios(times, name, base)),
                       memory_mib=step_memory_mib(step, x))
            for name, step in models.items()}


def _faster_rcnn(backbone_type: str):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import mmbackbones  # noqa: F401  (registers mmbackbones.ResNet)
    register_all_modules()
    cfg_path = os.path.join(os.path.dirname(__import__('mmdet').__file__), '.mim', 'configs',
                            'faster_rcnn', 'faster-rcnn_r50_fpn_1x_coco.py')
    cfg = Config.fromfile(cfg_path)
    backbone = cfg.model.backbone
    backbone.init_cfg = None
    if backbone_type == 'ours':
        backbone.type = 'mmbackbones.ResNet'
        backbone.pop('num_stages')  # ours: always 4 stages; the other arguments are mmdet's
    return MODELS.build(cfg.model)


def _det_batch(model):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 320, 320), dtype=torch.uint8, generator=gen)
    sample = DetDataSample(metainfo=dict(img_id=0, img_path='synthetic.jpg', img_shape=(320, 320),
                                         ori_shape=(320, 320), scale_factor=(1.0, 1.0)))
    gt = InstanceData()
    gt.bboxes = torch.tensor([[40., 50., 180., 200.], [150., 100., 300., 290.]])
    gt.labels = torch.tensor([3, 7])
    sample.gt_instances = gt
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), training=True)
    return data['inputs'], data['data_samples']


class _DetStep:
    def __init__(self, model, batch):
        self.model, self.batch = model, batch

    def __call__(self, _):
        torch.manual_seed(0)  # the same proposal sampling in both detectors
        losses = self.model.loss(*self.batch)
        loss, _ = self.model.parse_losses(losses)
        loss.backward()
        self.model.zero_grad(set_to_none=True)
        return float(loss.detach())


def bench_mmdet(args) -> dict:
    try:
        import mmdet  # noqa: F401
    except ImportError as exc:
        return dict(skipped=f'mmdet is not installed here ({exc}); run this script with the '
                            f'downstream venv (.venv-downstream)')
    theirs = _faster_rcnn('mmdet').train()
    ours = _faster_rcnn('ours').train()
    missing = ours.load_state_dict(theirs.state_dict(), strict=True)
    batch = _det_batch(theirs)
    steps = {'mmdet_resnet': _DetStep(theirs, batch), 'ours_resnet': _DetStep(ours, batch)}
    losses = {name: step(None) for name, step in steps.items()}
    frozen_ok = all(not p.requires_grad for p in ours.backbone.layer1.parameters()) and all(
        not p.requires_grad for p in theirs.backbone.layer1.parameters())
    times = timed_rounds(steps, None, args.rounds, 1, clock=time.thread_time)
    return dict(config='faster-rcnn_r50_fpn_1x_coco (frozen_stages=1, norm_eval=True)',
                image=320, load=str(missing), first_step_loss=losses, frozen_layer1=frozen_ok,
                median_s={k: round(statistics.median(v), 4) for k, v in times.items()},
                ratio_ours_vs_mmdet=ratio_summary(per_round_ratios(times, 'ours_resnet',
                                                                   'mmdet_resnet')))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--skip-mmdet', action='store_true')
    parser.add_argument('--skip-ours', action='store_true')
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'frozen.json'))
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 7)
    torch.set_num_threads(1)
    report = dict(benchmark='frozen_stages', torch=torch.__version__, rounds=args.rounds,
                  machine=platform.machine(), threads=1, clock='thread_time',
                  load_average=os.getloadavg())
    if not args.skip_ours:
        report['resnet50'] = bench_ours(args)
        print(f'ResNet-50 training step, batch {args.batch}, 224, norm_eval=True '
              f'(ratio: median [quartiles] of paired rounds)')
        for name, row in report['resnet50'].items():
            r, m = row['time_ratio_vs_unfrozen'], row['memory_mib']
            print(f"  {name:18s} {row['median_s']:.2f} s  x{r['median']:.3f} [{r['q1']:.3f}, "
                  f"{r['q3']:.3f}]  activations {m['activations']:.0f} MiB, step peak "
                  f"{m['peak']:.0f} MiB", flush=True)
    if not args.skip_mmdet:
        report['mmdet_faster_rcnn'] = det = bench_mmdet(args)
        if 'skipped' in det:
            print(f"mmdet Faster R-CNN: skipped: {det['skipped']}")
        else:
            r = det['ratio_ours_vs_mmdet']
            print(f"mmdet Faster R-CNN R50-FPN step (frozen_stages=1): ours/mmdet ResNet "
                  f"{r['median']:.3f} [{r['q1']:.3f}, {r['q3']:.3f}]; s/step "
                  f"{det['median_s']}; losses {det['first_step_loss']}")
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
