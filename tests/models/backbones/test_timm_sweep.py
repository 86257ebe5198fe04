"""A sweep over small timm models of every kind through TIMMBackbone(features_only=True).

Each model is built with random weights, run at a square and a non-square size, and its
outputs are checked against the metadata TIMMBackbone read from timm's ``feature_info`` before
the forward. Large families are shrunk through timm kwargs (``depths=(1, 1, 1, 1)``) so the
sweep stays fast; ViT-style models get ``dynamic_img_size=True`` for the non-square size.

Recorded with timm 1.0.31: of the 64 models tried, the 58 in ``SWEEP`` pass (91%); the 6 in
``NON_SQUARE_FAILS`` / ``METADATA_OFF`` are timm models that cannot do better, asserted below so
a timm change shows up.
"""
import pytest
import torch

pytest.importorskip('timm', reason='timm is an optional dependency')

from mmbackbones.models.backbones.timm_backbone import TIMMBackbone  # noqa: E402

SQUARE, NON_SQUARE = (224, 224), (192, 288)
DYN = dict(dynamic_img_size=True)
D1 = dict(depths=(1, 1, 1, 1))

# name: (kind, kwargs, sizes or None for the defaults)
SWEEP = {
    # CNNs
    'resnet10t': ('cnn', {}, None),
    'resnet14t': ('cnn', {}, None),
    'resnetv2_18': ('cnn', {}, None),
    'regnetx_002': ('cnn', {}, None),
    'regnety_002': ('cnn', {}, None),
    'efficientnet_lite0': ('cnn', {}, None),
    'tf_efficientnetv2_b0': ('cnn', {}, None),
    'mobilenetv2_050': ('cnn', {}, None),
    'mobilenetv3_small_050': ('cnn', {}, None),
    'mobilenetv4_conv_small': ('cnn', {}, None),
    'mnasnet_small': ('cnn', {}, None),
    'lcnet_050': ('cnn', {}, None),
    'ghostnet_050': ('cnn', {}, None),
    'ghostnetv2_100': ('cnn', {}, None),
    'repghostnet_050': ('cnn', {}, None),
    'hardcorenas_a': ('cnn', {}, None),
    'fbnetc_100': ('cnn', {}, None),
    'mixnet_s': ('cnn', {}, None),
    'tinynet_e': ('cnn', {}, None),
    'dla46_c': ('cnn', {}, None),
    'hrnet_w18_small': ('cnn', {}, None),
    'dpn48b': ('cnn', {}, None),
    'repvgg_a0': ('cnn', {}, None),
    'mobileone_s0': ('cnn', {}, None),
    'rexnetr_100': ('cnn', {}, None),
    'resnest14d': ('cnn', {}, None),
    'gernet_s': ('cnn', {}, None),
    'ese_vovnet19b_slim_dw': ('cnn', {}, None),
    'hgnetv2_b0': ('cnn', {}, None),
    'cs3darknet_focus_s': ('cnn', {}, None),
    'nf_regnet_b0': ('cnn', {}, None),
    'densenet121': ('cnn', {}, None),
    'starnet_s050': ('cnn', {}, None),
    'convnext_atto': ('cnn', {}, None),
    'convnextv2_atto': ('cnn', {}, None),
    'inception_next_tiny': ('cnn', D1, None),
    # hybrids: convolutions with attention / token mixers
    'lambda_resnet26t': ('hybrid', {}, None),
    'edgenext_xx_small': ('hybrid', {}, None),
    'fastvit_t8': ('hybrid', {}, None),
    'mobilevit_xxs': ('hybrid', {}, None),
    # MobileViTv2 rounds its maps up to the 2x2 unfold patch: sides must be multiples of 64.
    'mobilevitv2_050': ('hybrid', {}, ((256, 256), (256, 384))),
    'efficientvit_b0': ('hybrid', {}, None),
    'efficientvit_m0': ('hybrid', {}, None),
    'tiny_vit_5m_224': ('hybrid', {}, None),
    'pvt_v2_b0': ('hybrid', {}, None),
    'twins_pcpvt_small': ('hybrid', D1, None),
    'xcit_nano_12_p16_224': ('hybrid', {}, None),
    'vit_tiny_r_s16_p8_224': ('hybrid', DYN, None),
    'mambaout_femto': ('hybrid', {}, None),  # channels-last maps, permuted by the wrapper
    # MaxViT windows (8) at stride 32: sides must be multiples of 256.
    'maxvit_nano_rw_256': ('hybrid', {}, ((256, 256), (256, 512))),
    'swin_tiny_patch4_window7_224': ('hybrid', dict(D1, strict_img_size=False), None),
    'swinv2_cr_tiny_ns_224': ('hybrid', dict(D1, strict_img_size=False), None),
    # plain ViTs (forward_intermediates through timm's feature getter)
    'vit_tiny_patch16_224': ('vit', DYN, None),
    'deit_tiny_distilled_patch16_224': ('vit', DYN, None),
    'eva02_tiny_patch14_224': ('vit', DYN, ((224, 224), (196, 280))),
    'vit_wee_patch16_reg1_gap_256': ('vit', DYN, None),
    'vit_betwixt_patch16_reg4_gap_256': ('vit', dict(DYN, depth=2, out_indices=(0, 1)), None),
    'samvit_base_patch16': ('vit', dict(depth=2, embed_dim=192, num_heads=3, img_size=224,
                                        global_attn_indexes=(), out_indices=(0, 1)), None),
}

# Fixed-resolution models: fine at 224x224, they cannot run another size.
NON_SQUARE_FAILS = {
    'levit_128s': 'attention biases are tables for the 224x224 token grid',
    'efficientformerv2_s0': 'attention biases are tables for the 224x224 token grid',
    'coat_lite_tiny': 'its patch embedding asserts the configured image size',
    'convit_tiny': 'fixed position embedding and no dynamic_img_size option',
}
# Models whose maps are not the size feature_info's reduction promises.
METADATA_OFF = {
    'pit_ti_224': 'unpadded patch conv: 27x27 maps at 224 where reduction 8 promises 28x28',
    'crossvit_tiny_240': 'resizes the input to its two branch sizes; reductions 12/17 are nominal',
}


def _forward_matches_metadata(model, size):
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == len(model.out_channels)
    mismatches = []
    for out, name, c, s in zip(outs, model.out_names, model.out_channels, model.out_strides):
        expected = (c, size[0] / s, size[1] / s)
        # a side that is not a multiple of the stride rounds either way (floor or ceil)
        if out.dim() != 4 or out.shape[1] != c or abs(out.shape[2] - expected[1]) >= 1 or \
                abs(out.shape[3] - expected[2]) >= 1:
            mismatches.append(f'{name}: {tuple(out.shape)} vs channels {c}, stride {s}')
    return mismatches


@pytest.mark.parametrize('name', sorted(SWEEP))
def test_sweep_model_outputs_match_metadata(name):
    kind, kwargs, sizes = SWEEP[name]
    model = TIMMBackbone(name, features_only=True, **kwargs).eval()
    assert model.out_channels and len(model.out_channels) == len(model.out_strides)
    assert all(s >= 1 for s in model.out_strides)
    for size in sizes or (SQUARE, NON_SQUARE):
        assert _forward_matches_metadata(model, size) == [], (name, size)


def test_sweep_is_large_and_diverse():
    kinds = [kind for kind, _, _ in SWEEP.values()]
    assert len(SWEEP) >= 40
    assert kinds.count('cnn') >= 20 and kinds.count('hybrid') >= 10 and kinds.count('vit') >= 5
    tried = len(SWEEP) + len(NON_SQUARE_FAILS) + len(METADATA_OFF)
    assert len(SWEEP) / tried >= 0.9  # the recorded success rate (58 / 64)


@pytest.mark.parametrize('name', sorted(NON_SQUARE_FAILS))
def test_fixed_resolution_models_work_square_only(name):
    model = TIMMBackbone(name, features_only=True).eval()
    assert _forward_matches_metadata(model, SQUARE) == []
    # timm's assert / shape error comes out as a ValueError that names the input size
    with pytest.raises(ValueError, match=r'cannot run on an input of size \(192, 288\)'):
        _forward_matches_metadata(model, NON_SQUARE)


@pytest.mark.parametrize('name', sorted(METADATA_OFF))
def test_models_whose_maps_differ_from_feature_info(name):
    model = TIMMBackbone(name, features_only=True).eval()
    assert _forward_matches_metadata(model, SQUARE) != []
