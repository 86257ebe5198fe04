"""Every config under configs/downstream/mmseg/, built by mmseg 1.2.2 itself, on a tiny batch.

For each config: mmseg's registries build the segmentor (our backbone inside), the backbone's
Pretrained init_cfg loads an mmpretrain-shaped checkpoint, ``extract_feat`` gives what the decode
heads read, ``loss`` + backward reach every trainable backbone parameter, and ``predict`` returns a
label map. 256x256 images with label maps (one, two for the loss: see there); SyncBN is reverted
to BN as mmengine's Runner does outside distributed training.
"""
import os

import pytest

from tests.downstream import _common

mmseg = _common.require('mmseg')

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.registry import MODELS as MMSEG_MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

from mmbackbones.integrations import neck_in_channels  # noqa: E402

CONFIGS = _common.configs('mmseg')
SIZE = 256


def _batch(model, num_classes: int, training: bool, num_images: int = 1):
    gen = torch.Generator().manual_seed(0)
    imgs, samples = [], []
    for _ in range(num_images):
        imgs.append(torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=gen))
        sample = SegDataSample(metainfo=dict(img_path='synthetic.jpg', img_shape=(SIZE, SIZE),
                                             ori_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE)))
        label = torch.randint(0, num_classes, (1, SIZE, SIZE), generator=gen)
        label[:, :16] = 255  # an ignored band, as in real annotations
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), training=training)
    return data['inputs'], data['data_samples']


@pytest.fixture(scope='module', params=CONFIGS, ids=_common.config_id)
def built(request, tmp_path_factory):
    cfg = Config.fromfile(request.param)  # runs custom_imports when the config has them
    # The tiny batch is one 256x256 crop (the configs train on 512x512 crops).
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    saved = _common.with_local_checkpoint(cfg, str(tmp_path_factory.mktemp('ckpt')))
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MMSEG_MODELS.build(cfg.model))
    model.init_weights()
    return dict(cfg=cfg, model=model, saved=saved)


def _expected_feats(cfg):
    """(channels, stride) of each map extract_feat returns, from the config alone."""
    backbone = cfg.model.backbone
    if cfg.model.get('neck'):
        neck = cfg.model.neck
        patch = backbone.get('patch_size', 16)
        return [(neck.out_channels, int(patch / s)) for s in neck.scales]
    channels = neck_in_channels(backbone, 'mmseg')
    strides, stride = [], 4
    for s in backbone.strides:
        stride *= s
        strides.append(stride)
    return list(zip(channels, strides))


def test_mmseg_builds_our_backbone_and_loads_the_checkpoint(built):
    cfg, model = built['cfg'], built['model']
    backbone = model.backbone
    assert type(backbone).__module__.startswith('mmbackbones.'), type(backbone)
    assert type(backbone).__name__ == cfg.model.backbone.type.split('.')[-1]
    assert type(model).__module__.startswith('mmseg.')
    channels = neck_in_channels(cfg.model.backbone, 'mmseg')
    if model.with_neck:
        assert model.neck.in_channels == channels
    else:  # single-input heads read the entry at their in_index
        assert model.decode_head.in_channels == channels[cfg.model.decode_head.in_index]
        assert model.auxiliary_head.in_channels == channels[cfg.model.auxiliary_head.in_index]
    if cfg.model.backbone.type.endswith('VisionTransformer'):
        assert len(cfg.model.backbone.out_indices) == 4
    if built['saved'] is not None:
        got = backbone.state_dict()
        assert set(got) == set(built['saved'])
        for key, value in built['saved'].items():
            torch.testing.assert_close(got[key], value, msg=key)


def test_extract_feat_gives_what_the_heads_read(built):
    cfg, model = built['cfg'], built['model']
    inputs, _ = _batch(model, cfg.model.decode_head.num_classes, training=False)
    assert tuple(inputs.shape) == (1, 3, SIZE, SIZE)
    with torch.no_grad():
        feats = model.extract_feat(inputs)
    expected = _expected_feats(cfg)
    assert [(f.shape[1], SIZE // f.shape[-1]) for f in feats] == expected


def test_loss_and_backward_reach_the_backbone(built):
    cfg, model = built['cfg'], built['model']
    model.train()
    model.zero_grad()
    # Two images: the heads' image-pooling branches (ASPP, UPerHead's PPM) batch-normalise a
    # 1x1 map, which BatchNorm refuses to train on a single value per channel.
    inputs, samples = _batch(model, cfg.model.decode_head.num_classes, training=True,
                             num_images=2)
    losses = model.loss(inputs, samples)
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses), sorted(losses)
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss) and loss.item() > 0, log_vars
    loss.backward()
    assert _common.trainable_backbone_params_without_grad(model.backbone) == []


def test_predict_returns_a_label_map(built):
    cfg, model = built['cfg'], built['model']
    model.eval()
    inputs, samples = _batch(model, cfg.model.decode_head.num_classes, training=False)
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert len(results) == 1
    pred = results[0].pred_sem_seg.data
    assert tuple(pred.shape) == (1, SIZE, SIZE)
    assert 0 <= int(pred.min()) and int(pred.max()) < cfg.model.decode_head.num_classes
    logits = results[0].seg_logits.data
    assert tuple(logits.shape) == (cfg.model.decode_head.num_classes, SIZE, SIZE)


@pytest.mark.parametrize('name', ['deeplabv3_mmbackbones-r50-v1c-d8.py'])
def test_scoped_type_works_without_custom_imports(name):
    """In a fresh interpreter: nothing imports mmbackbones; the 'mmbackbones.' scope does."""
    path = os.path.join(_common.CONFIG_ROOT, 'mmseg', name)
    code = f'''
import sys
from mmengine.config import Config
from mmengine.registry import init_default_scope
cfg = Config.fromfile({path!r})
assert 'custom_imports' not in cfg
from mmseg.utils import register_all_modules
from mmseg.registry import MODELS
register_all_modules(init_default_scope=False)
init_default_scope('mmseg')
assert 'mmbackbones' not in sys.modules
cfg.model.backbone.depth = 18  # channel lists below follow; only the scope matters here
cfg.model.decode_head.in_channels = 512
cfg.model.auxiliary_head.in_channels = 256
model = MODELS.build(cfg.model)
print(type(model.backbone).__name__, type(model.backbone).__module__)
'''
    result = _common.run_isolated(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ['ResNetV1c', 'mmbackbones.models.backbones.resnet']
