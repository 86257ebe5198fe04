"""VisionTransformer with mmseg's argument spelling (the mmseg twin, and mmseg's extras on the
core), the mmseg_vit key converter, and the position-embedding init under a non-Pretrained
init_cfg (mmpretrain's behaviour). Parity with mmseg itself:
tests/downstream/test_shipped_transformer_configs.py."""
import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.mmseg_vit import convert_mmseg_vit, is_mmseg_vit
from mmbackbones.models.backbones.vit import VisionTransformer
from tests.parity import mmpretrain_backbone

TINY = dict(embed_dims=32, num_layers=3, num_heads=2)
MMSEG = 'mmbackbones.mmseg.VisionTransformer'  # the twin (defaults: tests/compat/test_twins.py)


def test_mmseg_arguments_take_effect():
    model = build_backbone(dict(
        type=MMSEG, img_size=32, patch_size=8, **TINY, mlp_ratio=2, attn_drop_rate=0.1,
        act_cfg=dict(type='ReLU'), patch_bias=True, patch_norm=True, patch_pad='same',
        final_norm=True, norm_cfg=dict(type='LN', eps=1e-6), norm_eval=True, num_fcs=2,
        out_indices=[0, 1, 2]))
    assert model.layers[0].ffn.layers[0][0].out_features == 64
    assert isinstance(model.layers[0].ffn.layers[0][1], torch.nn.ReLU)
    assert model.layers[0].attn.attn_drop == 0.1
    assert model.patch_embed.projection.bias is not None and model.patch_embed.norm is not None
    assert model.patch_embed.padding == 'same' and model.ln1 is not None
    assert model.norm_eval is True


def test_output_cls_token_and_out_origin():
    for model in (build_backbone(dict(type=MMSEG, img_size=32, patch_size=8, **TINY,
                                      output_cls_token=True, out_origin=True)),
                  VisionTransformer(arch=dict(TINY, feedforward_channels=128), img_size=32,
                                    patch_size=8, out_type='featmap', output_cls_token=True,
                                    out_origin=True)):
        model.eval()
        assert model.out_names == ('stage0', 'stage3')
        out = model(torch.randn(2, 3, 32, 40))
        assert len(out) == 2
        for item in out:
            featmap, cls = item
            assert featmap.shape == (2, 32, 4, 5) and cls.shape == (2, 32)


def test_frozen_exclude_freezes_every_other_parameter():
    model = VisionTransformer(arch='deit-tiny', img_size=32, patch_size=8,
                              frozen_exclude=['pos_embed'])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['pos_embed']
    model = build_backbone(dict(type=MMSEG, img_size=32, patch_size=8, **TINY))
    assert all(p.requires_grad for p in model.parameters())  # mmseg's default ['all']


@pytest.mark.parametrize('kind,kwargs,exc,match', [
    (MMSEG, dict(embed_dims=30, num_heads=4), ValueError, 'divisible'),
    (MMSEG, dict(mlp_ratio=-1), ValueError, 'mlp_ratio'),
    (MMSEG, dict(num_fcs=3), ValueError, 'num_fcs'),
    (MMSEG, dict(output_cls_token=True, with_cls_token=False), ValueError, 'output_cls_token'),
    (MMSEG, dict(patch_pad='reflect'), ValueError, 'patch_pad'),
    (MMSEG, dict(pretrained=['a.pth']), TypeError, 'pretrained'),
    (MMSEG, dict(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth')),
     ValueError, 'pretrained'),
    (MMSEG, dict(out_type='raw'), TypeError, "unknown argument 'out_type'"),
    ('mmcls.VisionTransformer', dict(output_cls_token=True, out_type='raw'), ValueError,
     'output_cls_token'),
    ('mmcls.VisionTransformer', dict(patch_bias=True, patch_cfg=dict(bias=False)), ValueError,
     'patch_cfg'),
    ('mmcls.VisionTransformer', dict(frozen_exclude='pos_embed'), TypeError, 'frozen_exclude'),
    ('mmcls.VisionTransformer', dict(out_origin=1), TypeError, 'out_origin'),
])
def test_bad_or_contradictory_arguments_are_refused(kind, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build_backbone(dict(type=kind, img_size=32, patch_size=8, **kwargs))


def test_pretrained_string_is_a_pretrained_init_cfg():
    with pytest.warns(UserWarning, match='deprecated'):
        model = build_backbone(dict(type=MMSEG, img_size=32, patch_size=8, **TINY,
                                    pretrained='pretrain/vit.pth'))
    assert model.init_cfg == dict(type='Pretrained', checkpoint='pretrain/vit.pth')


def _as_mmseg(state):
    out = {}
    for key, value in state.items():
        key = key.replace('attn.qkv.weight', 'attn.attn.in_proj_weight')
        key = key.replace('attn.qkv.bias', 'attn.attn.in_proj_bias')
        key = key.replace('attn.proj.', 'attn.attn.out_proj.')
        key = key.replace('pre_norm.', 'ln_pre.')
        out[key] = value
    return out


def _core(**kwargs):
    return VisionTransformer(arch=dict(TINY, feedforward_channels=128), img_size=32,
                             patch_size=8, **kwargs)


def test_mmseg_vit_converter_round_trip_and_auto_detection():
    model = _core(pre_norm=True)
    state = model.state_dict()
    mmseg_state = _as_mmseg(state)
    assert is_mmseg_vit(mmseg_state) and not is_mmseg_vit(state)
    back = convert_mmseg_vit(mmseg_state)
    assert list(back) == list(state)
    assert all(torch.equal(back[k], state[k]) for k in state)
    target = {k: tuple(v.shape) for k, v in state.items()}
    converted, used = convert_state_dict(mmseg_state, 'auto', target)
    assert used == 'mmseg_vit' and set(converted) == set(state)
    converted, used = convert_state_dict(mmseg_state, 'mmseg')
    assert used == 'mmseg_vit'


def test_with_cls_token_false_drops_mmsegs_unused_class_token():
    """mmseg keeps a class token (and its position entry) even with with_cls_token=False."""
    source = _core(with_cls_token=True)
    ours = _core(with_cls_token=False, out_type='featmap')
    result = ours.load_state_dict(_as_mmseg_converted(source.state_dict()), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(ours.pos_embed, source.pos_embed[:, 1:])


def _as_mmseg_converted(state):
    return convert_mmseg_vit(_as_mmseg(state))


def test_non_pretrained_init_cfg_initialises_pos_embed_like_mmpretrain():
    """mmpretrain's own ViT configs pass a Kaiming init_cfg; the position embedding must not
    stay at zero (mmpretrain draws it trunc-normal, std 0.02)."""
    init_cfg = [dict(type='Kaiming', layer='Conv2d', mode='fan_in', nonlinearity='linear')]
    ours = VisionTransformer(arch='deit-tiny', img_size=64, init_cfg=init_cfg)
    theirs = mmpretrain_backbone('VisionTransformer')(arch='deit-tiny', img_size=64,
                                                      init_cfg=init_cfg)
    torch.manual_seed(0)
    ours.init_weights()
    theirs.init_weights()
    for model in (ours, theirs):
        pos = model.pos_embed
        assert pos.abs().sum() > 0
        assert 0.015 < float(pos.std()) < 0.025
