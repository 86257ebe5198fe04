"""The transformer families of the zoo inside real dense-prediction models (issue 28, item 3).

mmdet 3.3's own Mask R-CNN and mmseg 1.2's own UPerNet (the bases under
``configs/downstream/_base_/models/``, as those libraries define them), the backbone switched
to ours (tiny variants), the neck's / heads' ``in_channels='auto'`` filled from the backbone by
``fill_auto_in_channels``: each model is built by the host's registry and trains one step, loss
and backward reaching every trainable backbone parameter. Pyramid backbones feed mmdet's FPN and
UPerHead directly; the single-stride ViTs (BEiT, MAE, DINOv2, EVA-02) go through mmseg's
``MultiLevelNeck``, as mmseg's ViT configs do (ViTDet's pyramid is the detectron2 tier's).
"""
import os

import pytest

from tests.downstream import _common

mmdet = _common.require('mmdet')
mmseg = _common.require('mmseg')

import torch  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmbackbones.integrations import fill_auto_in_channels  # noqa: E402

BASES = os.path.join(_common.CONFIG_ROOT, '_base_', 'models')
_TWINS = dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4],
              patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2], mlp_ratios=[2, 2, 2, 2],
              sr_ratios=[8, 4, 2, 1])
PYRAMIDS = {
    'mit': dict(type='mmbackbones.MixVisionTransformer', embed_dims=16,
                num_layers=[1, 1, 1, 1], num_heads=[1, 2, 5, 8]),
    'pvt': dict(type='mmbackbones.mmdet.PyramidVisionTransformer', embed_dims=16,
                num_layers=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
    'pvt_v2': dict(type='mmbackbones.mmdet.PyramidVisionTransformerV2', embed_dims=16,
                   num_layers=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
    'pcpvt': dict(type='mmcls.PCPVT', arch=_TWINS, out_indices=(0, 1, 2, 3)),
    'svt': dict(type='mmcls.SVT', arch=dict(_TWINS, window_sizes=[4, 4, 4, 4]),
                out_indices=(0, 1, 2, 3)),
    'mscan': dict(type='mmbackbones.mmseg.MSCAN', embed_dims=[16, 32, 48, 64],
                  depths=[1, 1, 1, 1], norm_cfg=dict(type='BN', requires_grad=True)),
}
_TINY_VIT = dict(embed_dims=64, num_layers=4, num_heads=2, feedforward_channels=128)
VITS = {
    'beit': (dict(type='mmcls.BEiTViT', arch=_TINY_VIT, img_size=128, patch_size=16,
                  out_indices=(0, 1, 2, 3), out_type='featmap'), 16),
    'mae': (dict(type='mmbackbones.mmseg.MAE', img_size=128, patch_size=16, embed_dims=64,
                 num_layers=4, num_heads=2, out_indices=(0, 1, 2, 3)), 16),
    'dinov2': (dict(type='mmcls.VisionTransformer', arch='dinov2-small', img_size=126,
                    out_indices=(2, 5, 8, 11), out_type='featmap'), 14),
    'eva02': (dict(type='mmcls.VisionTransformer', arch='eva02-tiny', img_size=126,
                   out_indices=(2, 5, 8, 11), out_type='featmap'), 14),
}


def _build(toolbox: str, model_cfg: dict):
    import importlib
    importlib.import_module(f'{toolbox}.utils').register_all_modules(init_default_scope=False)
    init_default_scope(toolbox)
    registry = importlib.import_module(f'{toolbox}.registry').MODELS
    torch.manual_seed(0)
    model = revert_sync_batchnorm(registry.build(model_cfg))
    model.init_weights()
    return model.train()


def _assert_one_step(model, loss_fn):
    model.zero_grad()
    losses = loss_fn(model)
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss) and loss.item() > 0, log_vars
    loss.backward()
    assert _common.trainable_backbone_params_without_grad(model.backbone) == []


def _mask_rcnn(backbone: dict) -> dict:
    cfg = Config.fromfile(os.path.join(BASES, 'mask-rcnn_r50_fpn.py'))
    cfg.model.backbone = backbone
    cfg.model.neck.in_channels = 'auto'
    return ConfigDict(fill_auto_in_channels(cfg.model, 'mmdet'))


def _det_loss(model):
    from tests.downstream.test_mmdet_configs import _batch
    inputs, samples = _batch(model, with_mask=True, training=True)
    return model.loss(inputs, samples)


def _seg_loss(model):
    from tests.downstream.test_mmseg_configs import _batch
    inputs, samples = _batch(model, 19, training=True, num_images=2)
    return model.loss(inputs, samples)


def _upernet(backbone: dict, neck=None) -> dict:
    cfg = Config.fromfile(os.path.join(BASES, 'upernet_vit-b16_mln.py'))
    cfg.model.pretrained = None
    cfg.model.backbone = backbone
    cfg.model.data_preprocessor.size = (256, 256)
    cfg.model.neck = neck
    if neck is None:  # the pyramid goes to the heads as it is
        cfg.model.decode_head.in_channels = 'auto'
        cfg.model.auxiliary_head.update(in_channels='auto', in_index=2)
    return ConfigDict(fill_auto_in_channels(cfg.model, 'mmseg'))


@pytest.mark.parametrize('name', sorted(PYRAMIDS))
def test_pyramid_in_mmdet_mask_rcnn(name):
    model = _build('mmdet', _mask_rcnn(PYRAMIDS[name]))
    assert type(model.backbone).__module__.startswith('mmbackbones.')
    _assert_one_step(model, _det_loss)


@pytest.mark.parametrize('name', sorted(PYRAMIDS))
def test_pyramid_in_mmseg_upernet(name):
    model = _build('mmseg', _upernet(PYRAMIDS[name]))
    assert type(model.backbone).__module__.startswith('mmbackbones.')
    _assert_one_step(model, _seg_loss)


@pytest.mark.parametrize('name', sorted(VITS))
def test_vit_in_mmseg_upernet_with_multilevel_neck(name):
    backbone, _ = VITS[name]
    from mmbackbones import build_backbone
    dims = build_backbone(dict(backbone, type=backbone['type'])).out_channels
    neck = dict(type='MultiLevelNeck', in_channels=list(dims), out_channels=dims[0],
                scales=[4, 2, 1, 0.5])
    cfg = _upernet(backbone, neck)
    cfg.decode_head.in_channels = [dims[0]] * 4
    cfg.auxiliary_head.in_channels = dims[0]
    model = _build('mmseg', cfg)
    assert type(model.backbone).__module__.startswith('mmbackbones.')
    _assert_one_step(model, _seg_loss)
