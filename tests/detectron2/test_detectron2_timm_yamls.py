"""Every yaml config of the detectron2_timm repository, as its users have them, on the real
detectron2: ``get_cfg`` + ``add_mmbackbones_config`` + ``merge_from_file`` (``_BASE_`` included),
``build_model``, one training step.

The yamls are read from ``../shared/data/detectron2_timm/config/`` (or ``$DETECTRON2_TIMM_CONFIGS``);
the test skips, saying so, where that folder is absent. Only what a CPU test needs is changed:
``MODEL.DEVICE`` cpu, ``PRETRAINED`` off (no network), train/test sizes 64..96 px.

A yaml that cannot work as written is listed in ``NOT_AS_WRITTEN`` with the reason; the test
checks that it fails as said (or, with no ``MODEL.BACKBONE.NAME``, that detectron2's default
builder is what it names), then builds and trains its nearest working form.
"""
import glob
import os

import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('timm')

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from mmbackbones.integrations.detectron2 import add_mmbackbones_config, register_all  # noqa: E402
from tests.detectron2._common import detection_batch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = os.environ.get('DETECTRON2_TIMM_CONFIGS') or os.path.join(
    REPO, '..', 'shared', 'data', 'detectron2_timm', 'config')
YAMLS = sorted(os.path.relpath(p, ROOT)
               for p in glob.glob(os.path.join(ROOT, '**', '*.yaml'), recursive=True))

_SWIN_HEADLESS = {'MODEL.BACKBONE.CONFIG.REMOVE_LAYERS': ['norm', 'head']}
_C5_HEADS = {'MODEL.ROI_HEADS.NAME': 'StandardROIHeads',
             'MODEL.ROI_BOX_HEAD.NAME': 'FastRCNNConvFCHead', 'MODEL.ROI_BOX_HEAD.NUM_FC': 2,
             'MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION': 7}
_EFFNET_HEADLESS = {'MODEL.BACKBONE.CONFIG.REMOVE_LAYERS': ['conv_head', 'bn2', 'global_pool',
                                                            'classifier']}

#: yaml -> (error type or None for "no NAME", message pattern as written, why, nearest form)
NOT_AS_WRITTEN = {
    'eff_net/efficientnetv2_m.yaml': (
        KeyError, r"REMOVE_LAYERS: 'act2' is not a top-level module of efficientnetv2_m",
        "timm 1.x fuses bn2 + act2 into one BatchNormAct2d (no 'act2'), and blocks.2/3/5/6 have "
        "strides 8/16/32/32, not the declared 4/8/16/32; blocks.1/2/4/5 have the declared strides "
        "and the yaml's own CHANNELS",
        {**_EFFNET_HEADLESS,
         'MODEL.BACKBONE.CONFIG.OUT_FEATURES': ['blocks.1', 'blocks.2', 'blocks.4', 'blocks.5']}),
    'eff_net/effnet_v2_rw_s.yaml': (
        KeyError, r"REMOVE_LAYERS: 'act2' is not a top-level module of efficientnetv2_rw_s",
        "timm 1.x fuses bn2 + act2 into one BatchNormAct2d: there is no 'act2' to remove",
        dict(_EFFNET_HEADLESS)),
    'others/botnet26t_256.yaml': (
        None, None,
        'no MODEL.BACKBONE.NAME: detectron2 builds its default build_resnet_backbone and the '
        'CONFIG keys are ignored; BoTNet takes only its built input size (FIXED_INPUT_SIZE) and '
        'the inherited RPN/ROI heads read res4',
        {'MODEL.BACKBONE.NAME': 'build_botnet26t_256_backbone', 'INPUT.FIXED_INPUT_SIZE': True,
         'MODEL.RPN.IN_FEATURES': ['stage4'], 'MODEL.ROI_HEADS.IN_FEATURES': ['stage4'],
         **_C5_HEADS}),
    'others/inception_v3.yaml': (
        None, None,
        "no MODEL.BACKBONE.NAME (detectron2's default build_resnet_backbone is built); Inception "
        "has no 'final_conv'/'head' to remove (its head is global_pool + fc) and the inherited "
        "heads read res4",
        {'MODEL.BACKBONE.NAME': 'build_inception_v3_backbone',
         'MODEL.BACKBONE.CONFIG.REMOVE_LAYERS': ['global_pool', 'fc'],
         'MODEL.RPN.IN_FEATURES': ['stage7'], 'MODEL.ROI_HEADS.IN_FEATURES': ['stage7'],
         'INPUT.MIN_SIZE_TRAIN': (128, ), 'INPUT.MAX_SIZE_TRAIN': 160, **_C5_HEADS}),
    'others/swin_base_patch4_window12.yaml': (
        KeyError, r"REMOVE_LAYERS: 'avgpool' is not a top-level module of swin_base",
        "timm 1.x Swin has no 'avgpool' (pooling is inside its head); the yaml's second INPUT "
        "block sets FIXED_INPUT_SIZE False, but Swin takes only its built size; RPN/ROI read "
        "res5, which REMAPS names layer4",
        {**_SWIN_HEADLESS, 'INPUT.FIXED_INPUT_SIZE': True, 'MODEL.RPN.IN_FEATURES': ['layer4'],
         'MODEL.ROI_HEADS.IN_FEATURES': ['layer4']}),
    'swin/swin_small_patch4_window7_224_fpn.yaml': (
        KeyError, r"REMOVE_LAYERS: 'avgpool' is not a top-level module of swin_small",
        "timm 1.x Swin has no 'avgpool' (pooling is inside its head)", dict(_SWIN_HEADLESS)),
    'swin/swin_tiny_patch4_window7_224_fpn.yaml': (
        KeyError, r"REMOVE_LAYERS: 'avgpool' is not a top-level module of swin_tiny",
        "timm 1.x Swin has no 'avgpool' (pooling is inside its head)", dict(_SWIN_HEADLESS)),
}


@pytest.fixture(scope='module', autouse=True)
def registered():
    if not YAMLS:
        pytest.skip(f'no detectron2_timm yamls at {ROOT} (../shared/data/detectron2_timm/config, '
                    f'or set DETECTRON2_TIMM_CONFIGS)')
    register_all()


def _set(cfg, key, value):
    node = cfg
    *parents, leaf = key.split('.')
    for part in parents:
        node = node[part]
    node[leaf] = value


def load(rel: str, fixes=None):
    cfg = get_cfg()
    add_mmbackbones_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, rel))
    cfg.MODEL.DEVICE = 'cpu'
    cfg.MODEL.BACKBONE.CONFIG.PRETRAINED = False  # no network here
    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN = (64, ), 96
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 64, 96
    for key, value in (fixes or {}).items():
        _set(cfg, key, value)
    return cfg


def test_every_yaml_is_covered():
    """The list of yamls that need a fix names only yamls that exist."""
    assert YAMLS, ROOT
    assert set(NOT_AS_WRITTEN) <= set(YAMLS), sorted(set(NOT_AS_WRITTEN) - set(YAMLS))


@pytest.mark.parametrize('rel', YAMLS)
def test_yaml_builds_and_trains(rel):
    fixes = None
    if rel in NOT_AS_WRITTEN:
        error, pattern, why, fixes = NOT_AS_WRITTEN[rel]
        print(f'{rel}: not as written: {why}; nearest form: {fixes}')
        cfg = load(rel)
        if error is None:
            assert cfg.MODEL.BACKBONE.NAME == 'build_resnet_backbone'  # detectron2's default
        else:
            torch.manual_seed(0)
            with pytest.raises(error, match=pattern):
                build_model(cfg)
    cfg = load(rel, fixes)
    torch.manual_seed(0)
    model = build_model(cfg)
    backbone = model.backbone
    bottom_up = getattr(backbone, 'bottom_up', backbone)
    assert type(bottom_up).__name__ == 'TimmModuleBackbone', type(bottom_up)
    config = cfg.MODEL.BACKBONE.CONFIG
    assert list(bottom_up.out_names) == (list(config.REMAPS) or list(config.OUT_FEATURES))
    shapes = bottom_up.output_shape()
    if config.STRIDES:
        assert [shapes[n].stride for n in bottom_up.out_names] == list(config.STRIDES)
    if config.CHANNELS:
        assert [shapes[n].channels for n in bottom_up.out_names] == list(config.CHANNELS)
    unused = {f'model.{n}' for n in bottom_up.unused_parameters}
    frozen = [n for n, p in bottom_up.named_parameters() if not p.requires_grad]
    assert unused <= set(frozen)  # no parameter left waiting for a gradient (DDP)
    frozen = [n for n in frozen if n not in unused]
    expect_frozen = cfg.MODEL.BACKBONE.FREEZE_AT > 0 or bool(config.FREEZE_LAYERS)
    assert bool(frozen) == expect_frozen, frozen[:5]

    model.train()
    size = max(cfg.INPUT.MIN_SIZE_TRAIN)
    with EventStorage():
        losses = model(detection_batch(size=size, with_masks=cfg.MODEL.MASK_ON))
    total = sum(losses.values())
    assert torch.isfinite(total), losses
    total.backward()
    trainable = [(n, p) for n, p in bottom_up.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable), \
        [n for n, p in trainable if p.grad is None][:5]
    assert all(p.grad is None for n, p in bottom_up.named_parameters() if n in frozen)
