"""detectron2_timm's workflow on the real detectron2: ``register_all()``, a yaml that names
``build_<timm_name>_fpn_backbone`` and sets detectron2_timm's keys, ``build_model``, one training
step and inference; our own ``MODEL.MMBACKBONES`` node from yaml and from ``opts``; keys that
cannot apply give clear errors."""
import textwrap

import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('timm')

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import BACKBONE_REGISTRY, build_backbone, build_model  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from mmbackbones.integrations.detectron2 import (add_mmbackbones_config,  # noqa: E402
                                                 merge_from_list, register_all)
from tests.detectron2._common import detection_batch  # noqa: E402

RCNN_YAML = """
MODEL:
  META_ARCHITECTURE: GeneralizedRCNN
  DEVICE: cpu
  BACKBONE:
    NAME: build_resnet18_fpn_backbone
    FREEZE_AT: 1
    CONFIG:
      OUT_FEATURES: [layer2, layer3, layer4]
      REMAPS: [res3, res4, res5]
      REMOVE_LAYERS: [global_pool, fc]
      STRIDES: [8, 16, 32]
      PRETRAINED: False
  FPN:
    IN_FEATURES: [res3, res4, res5]
  ANCHOR_GENERATOR:
    SIZES: [[32], [64], [128], [256]]
  RPN:
    IN_FEATURES: [p3, p4, p5, p6]
    POST_NMS_TOPK_TRAIN: 100
  ROI_HEADS:
    NAME: StandardROIHeads
    IN_FEATURES: [p3, p4, p5]
    NUM_CLASSES: 5
    BATCH_SIZE_PER_IMAGE: 64
  ROI_BOX_HEAD:
    NAME: FastRCNNConvFCHead
    NUM_FC: 2
    POOLER_RESOLUTION: 7
INPUT:
  FIXED_INPUT_SIZE: False
"""


@pytest.fixture(scope='module')
def registered():
    names = register_all()  # every timm model, detectron2_timm's naming, + ours
    return set(names) | {n for n in ('build_resnet18_fpn_backbone',) if n in BACKBONE_REGISTRY}


def config_from(tmp_path, text, opts=()):
    cfg = get_cfg()
    add_mmbackbones_config(cfg)
    path = tmp_path / 'config.yaml'
    path.write_text(textwrap.dedent(text))
    cfg.merge_from_file(str(path))
    merge_from_list(cfg, list(opts))
    return cfg


def test_register_all_names(registered):
    for name in ('build_resnet18_backbone', 'build_resnet18_fpn_backbone',
                 'build_convnext_tiny_fpn_backbone', 'build_mmbackbones_fpn_backbone',
                 'build_mmbackbones_resnet_backbone'):
        assert name in BACKBONE_REGISTRY, name
    assert register_all() == []  # a second call registers nothing twice


def test_detectron2_timm_yaml_builds_and_trains(tmp_path, registered):
    cfg = config_from(tmp_path, RCNN_YAML)
    torch.manual_seed(0)
    model = build_model(cfg)
    bottom_up = model.backbone.bottom_up
    assert {k: (s.channels, s.stride) for k, s in bottom_up.output_shape().items()} == \
        {'res3': (128, 8), 'res4': (256, 16), 'res5': (512, 32)}
    # FREEZE_AT=1 (detectron2_timm): every module up to the first output's module, layer2
    assert bottom_up.frozen_modules == ('conv1', 'bn1', 'act1', 'maxpool', 'layer1', 'layer2')
    frozen = {n for n, p in bottom_up.named_parameters() if not p.requires_grad}
    assert any(n.startswith('model.layer2.') for n in frozen)
    assert not any(n.startswith('model.layer3.') for n in frozen)
    from detectron2.layers import FrozenBatchNorm2d
    assert isinstance(bottom_up.model.layer2[0].bn1, FrozenBatchNorm2d)  # as detectron2 freezes
    assert isinstance(bottom_up.model.layer3[0].bn1, torch.nn.BatchNorm2d)
    timm_backbone = bottom_up
    model.train()
    with EventStorage():
        losses = model(detection_batch(size=96))
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in timm_backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    model.eval()
    with torch.no_grad():
        results = model(detection_batch(size=96, seed=1))
    assert len(results) == 2 and results[0]['instances'].image_size == (96, 96)


def test_fixed_input_size_builds_for_the_train_size_and_pads(tmp_path, registered):
    """detectron2_timm's FIXED_INPUT_SIZE: the model is built for the largest train sizes cut to
    the largest stride; inputs are zero-padded to it and outputs cut back."""
    cfg = config_from(tmp_path, """
        MODEL:
          BACKBONE:
            NAME: build_test_vit_backbone
            FREEZE_AT: 0
            CONFIG:
              OUT_FEATURES: [-1]
              REMAPS: [vit]
              STRIDES: [16]
        INPUT:
          FIXED_INPUT_SIZE: True
          MIN_SIZE_TRAIN: [60, 70]
          MAX_SIZE_TRAIN: 100
        """)
    backbone = build_backbone(cfg)
    assert backbone.model.patch_embed.img_size == (64, 96)
    assert {k: (v.channels, v.stride) for k, v in backbone.output_shape().items()} == {
        'vit': (backbone.model.embed_dim, 16)}
    out = backbone(torch.randn(1, 3, 50, 90))
    assert out['vit'].shape[-2:] == (4, 6)
    with pytest.raises(ValueError, match='larger than the fixed input size 64x96'):
        backbone(torch.randn(1, 3, 70, 90))


@pytest.mark.parametrize('text,error,match', [
    ("""
     MODEL:
       BACKBONE: {NAME: build_resnet18_backbone, FREEZE_AT: 0}
     INPUT: {FIXED_INPUT_SIZE: True}
     """, ValueError, r'FIXED_INPUT_SIZE=True builds resnet18 for img_size=\(800, 1312\), '
                      r'but it takes no img_size'),
    ("""
     MODEL:
       BACKBONE:
         NAME: build_resnet18_backbone
         FREEZE_AT: 0
         CONFIG: {OUT_FEATURES: [layer2, layer3], STRIDES: [8, 32]}
     """, ValueError, r"'layer3' \(module 'layer3'\) is declared stride 32 but has stride 16"),
    ("""
     MODEL:
       BACKBONE:
         NAME: build_mmbackbones_backbone
         FREEZE_AT: 0
         CONFIG: {PRETRAINED: True}
       MMBACKBONES: {TYPE: ResNet, ARGS: {depth: 18}}
     """, ValueError, r'PRETRAINED=True cannot apply: ResNet has no pretrained'),
    ("""
     MODEL:
       BACKBONE:
         NAME: build_resnet18_backbone
         FREEZE_AT: 0
         CONFIG: {OUT_FEATURES: [2, 3], REMAPS: [res3]}
     """, ValueError, r'REMAPS=\[.res3.\] must give one name per output'),
    ("""
     MODEL:
       BACKBONE:
         NAME: build_resnet18_backbone
         FREEZE_AT: 0
         CONFIG: {REMOVE_LAYERS: [avgpool]}
     """, KeyError, r"REMOVE_LAYERS: 'avgpool' is not a top-level module of resnet18"),
    ("""
     MODEL:
       BACKBONE:
         NAME: build_resnet18_backbone
         FREEZE_AT: 0
         CONFIG: {OUT_FEATURES: [layer1, layer2], CHANNELS: [64, 64]}
     """, ValueError, r'CHANNELS=\[64, 64\] but resnet18 outputs .* have \[64, 128\]'),
    ("""
     MODEL:
       BACKBONE:
         NAME: build_resnet18_backbone
         FREEZE_AT: 3
         CONFIG: {OUT_FEATURES: [layer1, layer2]}
     """, ValueError, r'FREEZE_AT=3 but there are only 2 outputs'),
])
def test_keys_that_cannot_apply(tmp_path, registered, text, error, match):
    cfg = config_from(tmp_path, text)
    with pytest.raises(error, match=match):
        build_backbone(cfg)


def test_mmbackbones_node_from_yaml_and_opts(tmp_path, registered):
    cfg = config_from(tmp_path, """
        MODEL:
          BACKBONE: {NAME: build_mmbackbones_fpn_backbone, FREEZE_AT: 0}
          FPN: {IN_FEATURES: [res3, res4, last]}
          MMBACKBONES:
            TYPE: ResNet
            ARGS: {depth: 18, out_indices: [1, 2, 3]}
            SIZE_DIVISIBILITY: 32
        """, opts=['MODEL.MMBACKBONES.ARGS.depth', '34',  # a key the yaml set
                   'MODEL.MMBACKBONES.ARGS.norm_eval', 'True',  # a key new to the config
                   'MODEL.MMBACKBONES.RENAME.res5', 'last'])
    assert cfg.MODEL.MMBACKBONES.ARGS.depth == 34 and cfg.MODEL.MMBACKBONES.ARGS.norm_eval is True
    fpn = build_backbone(cfg)
    bottom_up = fpn.bottom_up
    assert bottom_up.backbone.depth == 34 and bottom_up.backbone.norm_eval is True
    assert list(bottom_up.output_shape()) == ['res3', 'res4', 'last']
    assert fpn.size_divisibility == 32
    with torch.no_grad():
        out = fpn(torch.randn(2, 3, 64, 64))
    assert sorted(out) == ['p3', 'p4', 'p5', 'p6']
