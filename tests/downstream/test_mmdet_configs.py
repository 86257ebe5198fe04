"""Every config under configs/downstream/mmdet/, built by mmdet 3.3 itself, on a tiny batch.

For each config: mmdet's registries build the detector (our backbone inside), the backbone's
Pretrained init_cfg loads an mmpretrain-shaped checkpoint, ``extract_feat`` gives the pyramid the
heads expect, ``loss`` + backward reach every trainable backbone parameter, and ``predict``
returns detections. One 256x256 image with one box (and mask).
"""
import os

import pytest

from tests.downstream import _common

mmdet = _common.require('mmdet')

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmdet.registry import MODELS as MMDET_MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.mask import BitmapMasks  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from mmbackbones.integrations import neck_in_channels  # noqa: E402

CONFIGS = _common.configs('mmdet')
BOX = [40., 50., 180., 200.]


def _batch(model, with_mask: bool, training: bool):
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 256, 256), dtype=torch.uint8, generator=gen)
    sample = DetDataSample(metainfo=dict(img_id=0, img_path='synthetic.jpg', img_shape=(256, 256),
                                         ori_shape=(256, 256), scale_factor=(1.0, 1.0)))
    gt = InstanceData()
    gt.bboxes = torch.tensor([BOX])
    gt.labels = torch.tensor([3])
    if with_mask:
        mask = np.zeros((1, 256, 256), dtype=np.uint8)
        mask[0, 50:200, 40:180] = 1
        gt.masks = BitmapMasks(mask, 256, 256)
    sample.gt_instances = gt
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), training=training)
    return data['inputs'], data['data_samples']


@pytest.fixture(scope='module', params=CONFIGS, ids=_common.config_id)
def built(request, tmp_path_factory):
    cfg = Config.fromfile(request.param)  # runs custom_imports when the config has them
    saved = _common.with_local_checkpoint(cfg, str(tmp_path_factory.mktemp('ckpt')))
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(0)
    model = MMDET_MODELS.build(cfg.model)
    model.init_weights()
    return dict(cfg=cfg, model=model, saved=saved, path=request.param)


def _anchor_strides(cfg):
    head = cfg.model.get('bbox_head') or cfg.model.get('rpn_head')
    return [s if isinstance(s, int) else s[0] for s in head.anchor_generator.strides]


def test_mmdet_builds_our_backbone_and_loads_the_checkpoint(built):
    cfg, model = built['cfg'], built['model']
    backbone = model.backbone
    assert type(backbone).__module__.startswith('mmbackbones.'), type(backbone)
    assert type(backbone).__name__ == cfg.model.backbone.type.split('.')[-1]
    assert type(model).__module__.startswith('mmdet.')
    if model.with_neck:  # the neck was written for this backbone's channels
        assert model.neck.in_channels == neck_in_channels(cfg.model.backbone, 'mmdet')
        assert type(model.neck).__module__.startswith('mmdet.')
    if built['saved'] is not None:
        got = backbone.state_dict()
        assert set(got) == set(built['saved'])
        for key, value in built['saved'].items():
            torch.testing.assert_close(got[key], value, msg=key)


def test_extract_feat_gives_the_pyramid_the_heads_expect(built):
    cfg, model = built['cfg'], built['model']
    inputs, _ = _batch(model, 'mask_head' in cfg.model.get('roi_head', {}), training=False)
    assert tuple(inputs.shape) == (1, 3, 256, 256)
    with torch.no_grad():
        feats = model.extract_feat(inputs)
    strides = _anchor_strides(cfg)
    assert len(feats) == len(strides)
    for feat, stride in zip(feats, strides):
        assert feat.shape[1] == 256
        assert feat.shape[-1] == -(-256 // stride), (feat.shape, stride)


def test_loss_and_backward_reach_the_backbone(built):
    cfg, model = built['cfg'], built['model']
    with_mask = 'mask_head' in cfg.model.get('roi_head', {})
    model.train()
    model.zero_grad()
    inputs, samples = _batch(model, with_mask, training=True)
    losses = model.loss(inputs, samples)
    expected = {'loss_cls', 'loss_bbox'} if 'bbox_head' in cfg.model else {
        'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'}
    assert expected <= set(losses), sorted(losses)
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss) and loss.item() > 0, log_vars
    loss.backward()
    assert _common.trainable_backbone_params_without_grad(model.backbone) == []
    frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    if cfg.model.backbone.get('frozen_stages', -1) >= 0:
        assert frozen, 'frozen_stages set but nothing frozen'
        assert all(p.grad is None for p in model.backbone.parameters() if not p.requires_grad)


def test_predict_returns_detections(built):
    cfg, model = built['cfg'], built['model']
    with_mask = 'mask_head' in cfg.model.get('roi_head', {})
    model.eval()
    inputs, samples = _batch(model, with_mask, training=False)
    with torch.no_grad():
        results = model.predict(inputs, samples, rescale=True)
    assert len(results) == 1
    pred = results[0].pred_instances
    n = len(pred)
    assert n <= cfg.model.test_cfg.get('max_per_img', cfg.model.test_cfg.get(
        'rcnn', {}).get('max_per_img', 100))
    assert tuple(pred.bboxes.shape) == (n, 4) and pred.scores.shape == (n,)
    assert pred.labels.shape == (n,)
    if with_mask:
        assert tuple(pred.masks.shape) == (n, 256, 256)


@pytest.mark.parametrize('name', ['retinanet_mmbackbones-r50_fpn.py',
                                  'mask-rcnn_mmbackbones-r50_fpn.py'])
def test_scoped_type_works_without_custom_imports(name):
    """In a fresh interpreter: nothing imports mmbackbones; the 'mmbackbones.' scope does."""
    path = os.path.join(_common.CONFIG_ROOT, 'mmdet', name)
    code = f'''
import sys
from mmengine.config import Config
from mmengine.registry import init_default_scope
cfg = Config.fromfile({path!r})
assert 'custom_imports' not in cfg
from mmdet.utils import register_all_modules
from mmdet.registry import MODELS
register_all_modules(init_default_scope=False)
init_default_scope('mmdet')
assert 'mmbackbones' not in sys.modules
model = MODELS.build(cfg.model)
print(type(model.backbone).__module__, 'mmbackbones' in sys.modules)
'''
    result = _common.run_isolated(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ['mmbackbones.models.backbones.resnet', 'True']


def test_auto_in_channels_filled_before_mmdet_builds():
    from mmbackbones.integrations import fill_auto_in_channels
    cfg = Config.fromfile(os.path.join(_common.CONFIG_ROOT, 'mmdet',
                                       'retinanet_mmbackbones-r50_fpn.py'))
    cfg.model.backbone.update(depth=18, init_cfg=None)
    cfg.model.neck.in_channels = 'auto'
    model_cfg = fill_auto_in_channels(cfg.model, style='mmdet')
    assert model_cfg['neck']['in_channels'] == [64, 128, 256, 512]
    init_default_scope('mmdet')
    model = MMDET_MODELS.build(model_cfg)
    feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [8, 4, 2, 1, 1]
