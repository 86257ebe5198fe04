"""PVT v1/v2 against mmdet 3.3's own classes and Twins PCPVT/SVT against mmseg 1.2.2's: identical
keys (PVT) or mmseg's keys converted on load (Twins), equal outputs on the same weights at odd
sizes too, equal training-mode gradients, the official PVT releases through mmdet's own
``pvt_convert`` path and ours, whole mmdet/mmseg models whose checkpoints load ``strict=True``
with our backbone, a training step, layer-wise decay numbering."""
import copy
import inspect
import warnings

import pytest
import torch

from ._common import require

require('mmdet')
require('mmseg')

from mmbackbones.checkpoint.converters.official_pvt import revert_official_pvt  # noqa: E402
from mmbackbones.compat import (MMDetPyramidVisionTransformer,  # noqa: E402
                                MMDetPyramidVisionTransformerV2, MMSegPCPVT, MMSegSVT)
from mmbackbones.models.backbones.pvt import PyramidVisionTransformer  # noqa: E402
from mmbackbones.models.backbones.pvt import PyramidVisionTransformerV2  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

PVT_TINY = dict(embed_dims=8, num_layers=[1, 2, 1, 1], pretrain_img_size=64)
SEG_TINY = dict(embed_dims=[8, 16, 24, 32], num_heads=[1, 2, 3, 4], mlp_ratios=[2, 2, 2, 2],
                depths=[2, 2, 3, 2], sr_ratios=[8, 4, 2, 1])
TWINS = {('mmdet', 'PyramidVisionTransformer'): MMDetPyramidVisionTransformer,
         ('mmdet', 'PyramidVisionTransformerV2'): MMDetPyramidVisionTransformerV2,
         ('mmseg', 'PCPVT'): MMSegPCPVT, ('mmseg', 'SVT'): MMSegSVT}
CORES = {'PyramidVisionTransformer': PyramidVisionTransformer,
         'PyramidVisionTransformerV2': PyramidVisionTransformerV2}
SIZES = [(64, 64), (45, 61), (50, 37)]


def _native(host, name, **kwargs):
    import importlib
    importlib.import_module(f'{host}.models')
    registry = importlib.import_module(f'{host}.registry').MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return registry.build(dict(type=name, _scope_=host, **kwargs))


def _kwargs(host, name, **extra):
    base = PVT_TINY if host == 'mmdet' else dict(SEG_TINY, windiow_sizes=[3, 3, 2, 2]) \
        if name == 'SVT' else SEG_TINY
    return dict(copy.deepcopy(base), **extra)


def _pair(host, name, **extra):
    native = _native(host, name, **_kwargs(host, name, **extra))
    native.init_weights()
    perturb_(native)
    ours = TWINS[host, name](**_kwargs(host, name, **extra))
    ours.load_state_dict(native.state_dict(), strict=True)  # mmseg's Twins keys convert here
    return native, ours


@pytest.mark.parametrize('name', list(CORES))
def test_pvt_keys_identical_core_twin_native(name):
    native = _native('mmdet', name, **PVT_TINY)
    assert list(TWINS['mmdet', name](**PVT_TINY).state_dict()) == list(native.state_dict())
    assert list(CORES[name](**PVT_TINY).state_dict()) == list(native.state_dict())


@pytest.mark.parametrize('key', list(TWINS), ids='.'.join)
@pytest.mark.parametrize('extra', [dict(), dict(qkv_bias=False, out_indices=(1, 3))])
def test_outputs_equal_in_eval(key, extra):
    host, name = key
    if host == 'mmseg' and not extra:
        extra = dict(qkv_bias=True, norm_after_stage=name == 'PCPVT')
    native, ours = _pair(host, name, **extra)
    native.eval()
    ours.eval()
    for size in SIZES:
        x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert_outputs_close(native(x), ours(x))


@pytest.mark.parametrize('key', list(TWINS), ids='.'.join)
def test_training_mode_outputs_and_gradients_equal(key):
    host, name = key
    native, ours = _pair(host, name, drop_path_rate=0.0)
    native.train()
    ours.train()
    x = torch.randn(2, 3, 45, 61, generator=torch.Generator().manual_seed(2))
    outs_n, outs_o = native(x), ours(x)
    assert_outputs_close(outs_n, outs_o)
    sum(o.square().mean() for o in outs_n).backward()
    sum(o.square().mean() for o in outs_o).backward()
    grads_n = {k: p.grad for k, p in native.named_parameters()}
    if host == 'mmseg':  # mmseg's names: compare through the converter
        from mmbackbones.checkpoint.converters.mmseg_twins import convert_mmseg_twins
        grads_n = convert_mmseg_twins(grads_n)
    for k, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads_n[k], rtol=1e-4,
                                   atol=1e-5 * grads_n[k].abs().max().item() + 1e-9, msg=k)


def test_frozen_stages_and_norm_eval_are_ours_only():
    """mmdet's PVT and mmseg's Twins have neither argument (so the twins refuse them, as the
    hosts do); the cores take them and freezing leaves the numbers alone."""
    for (host, name), twin in TWINS.items():
        real = inspect.signature(type(_native(host, name, **_kwargs(host, name))).__init__)
        if name != 'PyramidVisionTransformerV2':
            assert 'frozen_stages' not in real.parameters
            assert 'norm_eval' not in real.parameters
        with pytest.raises(TypeError):
            twin(**_kwargs(host, name), frozen_stages=1)
    native, ours = _pair('mmdet', 'PyramidVisionTransformerV2')
    frozen = PyramidVisionTransformerV2(**PVT_TINY, frozen_stages=1, norm_eval=True)
    frozen.load_state_dict(ours.state_dict())
    frozen.train()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_close(native.eval()(x), frozen.eval()(x))
    assert not any(p.requires_grad for p in frozen.layers[0].parameters())


@pytest.mark.parametrize('name', list(CORES))
def test_official_release_same_as_mmdets_own_conversion(name, tmp_path):
    """A file in the official whai362/PVT layout: mmdet's ``init_weights`` (``pvt_convert``,
    ``convert_weights=True``) and ours (the converter table, mmdet's ``init_cfg`` spelling
    without a type) load the same numbers."""
    source = CORES[name](**PVT_TINY)
    perturb_(source)
    official = revert_official_pvt(source.state_dict())
    official['head.weight'] = torch.randn(10, 64)
    path = str(tmp_path / 'official.pth')
    torch.save(official, path)
    from mmengine.config import ConfigDict
    native = _native('mmdet', name, **PVT_TINY, init_cfg=ConfigDict(checkpoint=path))
    native.init_weights()
    ours = TWINS['mmdet', name](**PVT_TINY, init_cfg=dict(checkpoint=path))
    ours.init_weights()
    for key, value in native.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        assert_outputs_close(native.eval()(x), ours.eval()(x))


def _retinanet(backbone_type, **backbone):
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    model = dict(
        type='RetinaNet', data_preprocessor=None,
        backbone=dict(type=backbone_type, **backbone),
        neck=dict(type='FPN', in_channels=[8, 16, 40, 64], out_channels=16, start_level=1,
                  add_extra_convs='on_input', num_outs=5),
        bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=16, stacked_convs=1,
                       feat_channels=16,
                       anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                             scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                             strides=[8, 16, 32, 64, 128]),
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                       loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                     loss_weight=1.0),
                       loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                     min_pos_iou=0, ignore_iof_thr=-1),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                       debug=False))
    return MODELS.build(dict(model, _scope_='mmdet'))


def test_mmdet_retinanet_checkpoint_loads_strict_and_trains():
    """A whole mmdet RetinaNet-PVTv2 checkpoint loads ``strict=True`` into the same detector
    with ``mmbackbones.mmdet.PyramidVisionTransformerV2``: equal features; one training step."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    native = _retinanet('PyramidVisionTransformerV2', **PVT_TINY)
    perturb_(native)
    ours = _retinanet('mmbackbones.mmdet.PyramidVisionTransformerV2', **PVT_TINY)
    assert type(ours.backbone) is MMDetPyramidVisionTransformerV2
    ours.load_state_dict(native.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_close(native.eval().extract_feat(x), ours.eval().extract_feat(x))
    ours.train()
    samples = []
    for _ in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                             batch_input_shape=(64, 64), scale_factor=(1, 1)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 4., 40., 36.]]),
                                           labels=torch.tensor([1]))
        samples.append(sample)
    losses = ours.loss(x, samples)
    loss = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if 'loss' in k)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in ours.backbone.parameters())


@pytest.mark.parametrize('name', ['PCPVT', 'SVT'])
def test_mmseg_segmentor_checkpoint_loads_strict(name):
    """A whole mmseg EncoderDecoder checkpoint (mmseg's Twins keys) loads ``strict=True`` into
    the same segmentor with ``mmbackbones.mmseg.<name>``: equal features."""
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS

    def build(backbone_type):
        return MODELS.build(dict(
            type='EncoderDecoder', _scope_='mmseg', data_preprocessor=None,
            backbone=dict(type=backbone_type, **_kwargs('mmseg', name, qkv_bias=True)),
            neck=dict(type='FPN', in_channels=[8, 16, 24, 32], out_channels=8, num_outs=4),
            decode_head=dict(type='FPNHead', in_channels=[8, 8, 8, 8], in_index=[0, 1, 2, 3],
                             feature_strides=[4, 8, 16, 32], channels=8, num_classes=3,
                             norm_cfg=dict(type='BN', requires_grad=True),
                             loss_decode=dict(type='CrossEntropyLoss'))))
    native, ours = build(name), build(f'mmbackbones.mmseg.{name}')
    perturb_(native)
    assert type(ours.backbone) is TWINS['mmseg', name]
    ours.load_state_dict(native.state_dict(), strict=True)
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        assert_outputs_close(native.eval().extract_feat(x), ours.eval().extract_feat(x))


def test_mmpretrain_layer_decay_constructor_uses_our_depths():
    pytest.importorskip('mmpretrain', reason='mmpretrain provides the layer-decay constructor')
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    constructor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    model = PyramidVisionTransformer(**PVT_TINY)  # 5 blocks: depths 0..6
    lrs = {g['param_name']: g['lr'] for g in constructor(model).optimizer.param_groups}
    assert lrs['layers.0.0.projection.weight'] == lrs['layers.0.1.0.pos_embed'] == 0.5 ** 6
    assert lrs['layers.0.1.1.attn.attn.in_proj_weight'] == 0.5 ** 5
    assert lrs['layers.3.1.1.norm1.weight'] == 0.5 ** 1
    twins = MMSegSVT(**_kwargs('mmseg', 'SVT'))  # 9 layers: depths 0..10
    lrs = {g['param_name']: g['lr'] for g in constructor(twins).optimizer.param_groups}
    assert lrs['patch_embeds.0.projection.weight'] == 0.5 ** 10
    assert lrs['stages.3.1.ffn.layers.1.weight'] == lrs['norm_after_stage3.weight'] == 0.5 ** 1
