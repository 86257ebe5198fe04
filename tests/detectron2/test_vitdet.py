"""ViTDet against detectron2's real ``ViT`` + ``SimpleFeaturePyramid``: the same weights (a
detectron2 checkpoint, ``.pth`` and ``.pkl``) through our loader give the same pyramid."""
import pickle
from functools import partial

import pytest
import torch
from torch import nn

pytest.importorskip('detectron2', reason='the detectron2 tier needs detectron2')
from detectron2.modeling.backbone.fpn import LastLevelMaxPool  # noqa: E402
from detectron2.modeling.backbone.vit import SimpleFeaturePyramid as D2SFP  # noqa: E402
from detectron2.modeling.backbone.vit import ViT, get_vit_lr_decay_rate  # noqa: E402

from mmbackbones.checkpoint.converters.detectron2_vit import (  # noqa: E402
    is_detectron2_vit, revert_detectron2_vit, split_detectron2_vitdet)
from mmbackbones.models.backbones.vit import VisionTransformer  # noqa: E402
from mmbackbones.models.necks import SimpleFeaturePyramid  # noqa: E402

ARCH = dict(embed_dims=48, num_layers=3, num_heads=3, feedforward_channels=192)


def _detectron2_vitdet():
    torch.manual_seed(0)
    net = ViT(img_size=64, patch_size=16, embed_dim=48, depth=3, num_heads=3, window_size=3,
              window_block_indexes=[0, 2], use_rel_pos=True, rel_pos_zero_init=False,
              pretrain_img_size=32, norm_layer=partial(nn.LayerNorm, eps=1e-6),
              out_feature='last_feat')
    model = D2SFP(net, 'last_feat', 32, scale_factors=(4.0, 2.0, 1.0, 0.5),
                  top_block=LastLevelMaxPool(), norm='LN', square_pad=64)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for value in model.state_dict().values():
            value.add_(torch.randn(value.shape, generator=gen) * 0.02)
    return model.eval()


def _ours(init_cfg=None):
    return VisionTransformer(arch=ARCH, img_size=32, patch_size=16, with_cls_token=False,
                             final_norm=False, out_type='featmap', window_size=3,
                             window_block_indexes=[0, 2], use_rel_pos=True, rel_pos_size=4,
                             init_cfg=init_cfg)


@pytest.mark.parametrize('suffix', ['.pth', '.pkl'])
def test_vitdet_checkpoint_loads_with_equal_pyramid(suffix, tmp_path):
    theirs = _detectron2_vitdet()
    state = {'backbone.' + k: v for k, v in theirs.state_dict().items()}
    state['roi_heads.box_predictor.cls_score.weight'] = torch.zeros(3, 4)  # a detector's head
    path = tmp_path / f'vitdet{suffix}'
    if suffix == '.pth':
        torch.save({'model': state}, path)
    else:
        with open(path, 'wb') as f:
            pickle.dump({'model': {k: v.numpy() for k, v in state.items()},
                         '__author__': 'test'}, f)
    assert is_detectron2_vit(state)
    ours = _ours(dict(type='Pretrained', checkpoint=str(path)))
    ours.init_weights()
    ours.eval()
    vit_sd, neck_sd = split_detectron2_vitdet(state)
    for key, value in vit_sd.items():
        expected = value[:, 1:] if key == 'pos_embed' else value  # the class entry dropped
        assert torch.equal(ours.state_dict()[key], expected), key
    neck = SimpleFeaturePyramid(48, 32, top_block=True).eval()
    neck.load_state_dict(neck_sd, strict=True)
    for size in [(64, 64), (80, 48), (96, 128)]:  # padded windows, resized tables/positions
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected, got = theirs(x), neck(ours(x))
        assert list(expected) == list(neck.out_names)
        for name, out in zip(neck.out_names, got):
            assert out.shape == expected[name].shape
            torch.testing.assert_close(out, expected[name], rtol=1e-4, atol=1e-5)


def test_vitdet_reverts_to_detectron2s_names_and_layer_decay_matches():
    theirs = _detectron2_vitdet()
    ours = _ours()
    vit_sd, _ = split_detectron2_vitdet({'backbone.' + k: v
                                         for k, v in theirs.state_dict().items()})
    ours.load_state_dict(vit_sd)
    back = revert_detectron2_vit(ours.state_dict())
    d2_state = {'backbone.' + k: v for k, v in theirs.state_dict().items()
                if k.startswith('net.')}
    assert set(back) == set(d2_state)
    assert all(back[k].shape == v.shape for k, v in d2_state.items())  # pos_embed: a cls entry
    pos = 'backbone.net.pos_embed'
    assert torch.equal(back[pos][:, 1:], d2_state[pos][:, 1:])
    # detectron2's layer-wise decay numbering and ours give the same rate to every parameter
    for name, param in ours.named_parameters():
        depth, num = ours.get_layer_depth(name)
        (d2_name,) = revert_detectron2_vit({name: param.detach()})
        assert 0.7 ** (num - 1 - depth) == pytest.approx(
            get_vit_lr_decay_rate(d2_name, 0.7, num_layers=3)), name


def test_detrex_vit_and_simple_feature_pyramid_load_a_vitdet_model_state():
    from detectron2.modeling import Backbone

    from mmbackbones.detrex import SimpleFeaturePyramid as OurSFP
    from mmbackbones.detrex import ViT as OurViT
    theirs = _detectron2_vitdet()
    net = OurViT(img_size=64, patch_size=16, embed_dim=48, depth=3, num_heads=3, window_size=3,
                 window_block_indexes=[0, 2], use_rel_pos=True, rel_pos_zero_init=False,
                 pretrain_img_size=32, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                 out_feature='last_feat')
    ours = OurSFP(net, 'last_feat', 32, scale_factors=(4.0, 2.0, 1.0, 0.5),
                  top_block=LastLevelMaxPool(), norm='LN', square_pad=64)
    assert isinstance(ours, Backbone) and isinstance(net, Backbone)
    assert ours.output_shape() == theirs.output_shape()
    assert ours.padding_constraints['square_size'] == theirs.padding_constraints['square_size']
    assert ours.size_divisibility == theirs.size_divisibility
    assert net.output_shape() == theirs.net.output_shape()
    # a detector's whole state dict, loaded as detectron2's DetectionCheckpointer does
    detector, ref = nn.Module(), nn.Module()
    detector.backbone, ref.backbone = ours, theirs
    detector.load_state_dict(ref.state_dict())
    detector.eval()
    x = torch.randn(2, 3, 80, 48)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert list(got) == list(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)
    # detrex's lr_factor_func: the same rate for our names as detectron2's gives its own
    from mmbackbones.detrex import get_vit_lr_decay_rate as ours_rate
    d2_names = [n for n, _ in ref.named_parameters()]
    our_names = [n for n, _ in detector.named_parameters()]
    ours_rates = sorted(ours_rate(n, 0.7, 3) for n in our_names)
    assert ours_rates == sorted(get_vit_lr_decay_rate(n, 0.7, 3) for n in d2_names)
    assert len(set(ours_rates)) == 5  # the stem, 3 blocks, the rest
    with pytest.raises(ValueError, match='residual_block_indexes'):
        OurViT(depth=2, residual_block_indexes=[2])
    with pytest.raises(ValueError, match='norm_layer'):
        OurViT(depth=2, norm_layer=nn.BatchNorm2d)


def test_vitdet_mask_rcnn_trains_a_detectron2_step():
    """detectron2's Mask R-CNN (model-zoo config) with mmbackbones.detrex's ViT +
    SimpleFeaturePyramid as its backbone, as detectron2's ViTDet configs build it: one training
    step, every trainable backbone parameter gets a gradient."""
    from detectron2 import model_zoo
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    import mmbackbones.detrex as ours
    from tests.detectron2._common import detection_batch
    cfg = model_zoo.get_config('COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml')
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS = 'cpu', ''
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 64
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    torch.manual_seed(0)
    model = build_model(cfg)
    net = ours.ViT(img_size=64, patch_size=16, embed_dim=48, depth=3, num_heads=3,
                   window_size=2, window_block_indexes=[0, 2], use_rel_pos=True,
                   out_feature='last_feat')
    model.backbone = ours.SimpleFeaturePyramid(net, in_feature='last_feat', out_channels=256,
                                               scale_factors=(4.0, 2.0, 1.0, 0.5),
                                               top_block=LastLevelMaxPool(), norm='LN',
                                               square_pad=64)
    assert {k: v.stride for k, v in model.backbone.output_shape().items()} == {
        'p2': 4, 'p3': 8, 'p4': 16, 'p5': 32, 'p6': 64}
    model.train()
    with EventStorage():
        losses = model(detection_batch(size=64, with_masks=True))
    total = sum(losses.values())
    assert torch.isfinite(total), losses
    total.backward()
    missing = [n for n, p in model.backbone.named_parameters()
               if p.requires_grad and p.grad is None]
    assert missing == []


@pytest.mark.parametrize('use_abs_pos,pretrain_use_cls_token', [(True, True), (True, False),
                                                                (False, True)])
def test_residual_blocks_and_no_abs_pos_match_detectron2(use_abs_pos, pretrain_use_cls_token,
                                                        tmp_path):
    """ViTDet's residual conv blocks (``residual_block_indexes``) and ``use_abs_pos=False`` in
    the core ViT: detectron2's keys (``blocks.{i}.residual.conv1|norm1|...``, no ``pos_embed``),
    its init (last norm zero: the block starts as the identity), its outputs on the same
    weights, and the core ViT loading the same detectron2 checkpoint through ``init_cfg``."""
    from mmbackbones.checkpoint.keys import own_state_dict
    from mmbackbones.detrex import ViT as OurViT
    from tests.detectron2.test_detrex_backbones import assert_close_to_scale, perturbed_state
    kwargs = dict(img_size=64, patch_size=16, embed_dim=48, depth=4, num_heads=3, window_size=3,
                  window_block_indexes=[0, 2], residual_block_indexes=[1, 2], use_rel_pos=True,
                  rel_pos_zero_init=False, pretrain_img_size=32, use_abs_pos=use_abs_pos,
                  pretrain_use_cls_token=pretrain_use_cls_token,
                  norm_layer=partial(nn.LayerNorm, eps=1e-6))
    torch.manual_seed(0)
    theirs, mine = ViT(**kwargs).eval(), OurViT(**kwargs).eval()
    # detectron2's init of the residual block: the last norm zero (identity at start)
    for name in ('norm3.weight', 'norm3.bias'):
        assert not own_state_dict(mine)[f'layers.1.residual.{name}'].any()
    assert torch.equal(own_state_dict(mine)['layers.1.residual.norm1.weight'],
                       torch.ones(24))
    state = perturbed_state(theirs)
    theirs.load_state_dict(state)
    assert {k: v.shape for k, v in mine.state_dict().items()} == \
        {k: v.shape for k, v in state.items()}
    assert ('pos_embed' in state) == use_abs_pos
    mine.load_state_dict(state)
    for size in [(64, 64), (96, 80)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            assert_close_to_scale(mine(x)['last_feat'], theirs(x)['last_feat'])
    again = ViT(**kwargs).eval()
    again.load_state_dict(mine.state_dict(), strict=True)  # ours saves detectron2's layout
    # the core class, from a detectron2 checkpoint file (backbone.net.*), by init_cfg
    path = tmp_path / 'vitdet_res.pth'
    torch.save({'model': {'backbone.net.' + k: v for k, v in state.items()}}, path)
    core = VisionTransformer(
        arch=ARCH | dict(num_layers=4), img_size=32, patch_size=16, with_cls_token=False,
        final_norm=False, out_type='featmap', window_size=3, window_block_indexes=[0, 2],
        use_rel_pos=True, rel_pos_size=4, residual_block_indexes=[1, 2],
        with_pos_embed=use_abs_pos, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    core.init_weights()
    core.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_close_to_scale(core(x)[0], theirs(x)['last_feat'])
    # layer decay: the residual blocks get detectron2's rate (the last depth)
    for name, _ in core.named_parameters():
        (d2_name,) = revert_detectron2_vit({name: torch.zeros(1)}, cls_entry=False)
        depth, num = core.get_layer_depth(name)
        assert 0.7 ** (num - 1 - depth) == pytest.approx(
            get_vit_lr_decay_rate(d2_name, 0.7, num_layers=4)), name
