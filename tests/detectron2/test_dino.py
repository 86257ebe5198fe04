"""detrex's DINO (``projects/dino/configs/models/dino_r50.py``) with our backbones: one training
step each for the detrex-style ResNet-50 (the config's own backbone with only the import
changed), ``TimmBackbone`` and ``TorchvisionBackbone``, on CPU with two 96x96 images.

Kept small: 30 queries, 5 denoising groups, one encoder and two decoder layers (the backbone and
neck are the config's). DINO's training path calls ``.cuda()`` / ``.to('cuda')``; on a machine
without CUDA those calls are redirected to the CPU for the duration of the test."""
import os

import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('detrex', reason='detrex is not installed (make test-detectron2)')

from detectron2.config import LazyCall as L  # noqa: E402
from detectron2.config import LazyConfig, instantiate  # noqa: E402
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import mmbackbones.detrex as ours  # noqa: E402
from tests.detectron2._common import detection_batch  # noqa: E402


def backbones():
    return {
        'ResNet-50': (L(ours.ResNet)(
            stem=L(ours.BasicStem)(in_channels=3, out_channels=64, norm='FrozenBN'),
            stages=L(ours.ResNet.make_default_stages)(depth=50, stride_in_1x1=False,
                                                      norm='FrozenBN'),
            out_features=['res3', 'res4', 'res5'], freeze_at=1), None),
        'TimmBackbone': (L(ours.TimmBackbone)(
            model_name='resnet18', features_only=True, pretrained=False, in_channels=3,
            out_indices=(2, 3, 4), norm_layer=FrozenBatchNorm2d),
            {'p2': 128, 'p3': 256, 'p4': 512}),
        'TorchvisionBackbone': (L(ours.TorchvisionBackbone)(
            model_name='resnet18', pretrained=False,
            return_nodes={'layer2': 'res3', 'layer3': 'res4', 'layer4': 'res5'}),
            {'res3': 128, 'res4': 256, 'res5': 512}),
    }


@pytest.mark.parametrize('name', list(backbones()))
def test_dino_training_step(detrex_root, cpu_for_cuda, name):
    cfg = LazyConfig.load(os.path.join(detrex_root, 'projects', 'dino', 'configs', 'models',
                                       'dino_r50.py'))
    backbone, neck_channels = backbones()[name]
    model_cfg = cfg.model
    model_cfg.backbone = backbone
    if neck_channels is not None:
        model_cfg.neck.input_shapes = {k: ShapeSpec(channels=c) for k, c in neck_channels.items()}
        model_cfg.neck.in_features = list(neck_channels)
    model_cfg.device = 'cpu'
    model_cfg.num_queries = 30
    model_cfg.dn_number = 5
    model_cfg.transformer.encoder.num_layers = 1
    model_cfg.transformer.decoder.num_layers = 2
    torch.manual_seed(0)
    model = instantiate(model_cfg)
    assert type(model.backbone).__module__.startswith('mmbackbones')
    model.train()
    with EventStorage():
        losses = model(detection_batch(size=96))
    assert {'loss_class', 'loss_bbox', 'loss_giou', 'loss_class_dn'} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    trainable = [(n, p) for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, missing[:5]
    assert any(float(p.grad.abs().sum()) > 0 for _, p in trainable)
