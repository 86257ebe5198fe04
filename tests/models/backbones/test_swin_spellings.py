"""SwinTransformer's mmpretrain stage_cfgs/patch_cfg (parity with mmpretrain) and mmdet's
spelling (the twin ``mmbackbones.mmdet.SwinTransformer``, more in tests/compat/test_twins.py):
one model, contradictions refused (mmdet/mmseg parity:
tests/downstream/test_shipped_transformer_configs.py)."""
import warnings

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.models.backbones.swin import SwinTransformer
from tests.parity import assert_mmpretrain_parity, mmpretrain_backbone

ALL = (0, 1, 2, 3)
SMALL = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])


def _randomize(model):
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 0.2 - 0.1)


@pytest.mark.parametrize('kwargs,size', [
    # mmpretrain's _base_/models/swin_transformer/base_384.py pattern (a smaller window here)
    (dict(stage_cfgs=dict(block_cfgs=dict(window_size=4))), (140, 130)),
    (dict(stage_cfgs=[dict(block_cfgs=dict(window_size=w)) for w in (4, 3, 2, 2)],
          pad_small_map=True), (64, 64)),
    (dict(patch_cfg=dict(norm_cfg=None), pad_small_map=True), (48, 40)),
    (dict(stage_cfgs=dict(block_cfgs=dict(ffn_ratio=2.), downsample_cfg=dict(norm_cfg=None)),
          pad_small_map=True), (40, 56)),
])
def test_stage_cfgs_and_patch_cfg_match_mmpretrain(kwargs, size, tmp_path):
    theirs = mmpretrain_backbone('SwinTransformer')(arch=SMALL, out_indices=ALL,
                                                    drop_path_rate=0., **kwargs)
    assert_mmpretrain_parity(
        theirs, lambda init_cfg: SwinTransformer(arch=SMALL, out_indices=ALL, drop_path_rate=0.,
                                                 **kwargs, init_cfg=init_cfg),
        tmp_path, [size], randomize=_randomize, key_order=False, batch=1)


def test_mmdet_twin_is_the_core_model_with_mmdets_defaults():
    ours = build_backbone(dict(type='mmbackbones.mmdet.SwinTransformer', embed_dims=96,
                               depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]))
    ref = SwinTransformer('tiny', out_indices=ALL)
    assert isinstance(ours, SwinTransformer)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert (ours.embed_dims, ours.depths, ours.num_heads) == (96, [2, 2, 6, 2], [3, 6, 12, 24])
    # mmdet always shifts its windows (no shift dropping): pad_small_map=True
    assert ours.pad_small_map is True and ref.pad_small_map is False


@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(stage_cfgs=dict(blocks=dict())), ValueError, 'stage_cfgs'),
    (dict(stage_cfgs=[dict()] * 3), ValueError, 'stage_cfgs'),
    (dict(stage_cfgs=dict(block_cfgs=dict(window=3))), ValueError, 'block_cfgs'),
    (dict(stage_cfgs=dict(block_cfgs=dict(attn_cfgs=dict(heads=2)))), ValueError, 'attn_cfgs'),
    (dict(stage_cfgs=dict(block_cfgs=dict(window_size=0))), ValueError, 'window_size'),
    (dict(patch_cfg=dict(kernel=3)), ValueError, 'patch_cfg'),
    # mmdet's arguments on the core: checked, and contradictions with stage_cfgs refused
    (dict(mlp_ratio=2, stage_cfgs=dict(block_cfgs=dict(ffn_ratio=3))), ValueError, 'ffn_ratio'),
    (dict(strides=(4, 2, 2, 1)), ValueError, 'strides'),
    (dict(qk_scale='big'), ValueError, 'qk_scale'),
    (dict(patch_norm='yes'), TypeError, 'patch_norm'),
    (dict(pretrained=3), TypeError, 'pretrained'),
])
def test_bad_or_contradictory_arguments_are_refused(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SwinTransformer(**kwargs)


def test_original_swin_checkpoint_loads_like_mmdets_convert_weights(tmp_path):
    """mmdet's convert_weights=True reads original (Microsoft) Swin files: ours converts that
    layout on load whatever convert_weights says, and mmdet's own swin_converter turns the same
    file into the weights our model ends up with (except the classifier's final ``norm``, which
    we load into ``norm3`` where mmdet leaves it at its init)."""
    from mmbackbones.checkpoint.converters.timm_swin import unfold_order
    source = SwinTransformer(arch=SMALL, out_indices=ALL)
    _randomize(source)
    original = {}  # our weights written in the original repository's layout
    for key, value in source.state_dict().items():
        if key.endswith('relative_position_index'):
            continue
        new = key.replace('stages.', 'layers.', 1).replace('attn.w_msa.', 'attn.')
        new = new.replace('ffn.layers.0.0.', 'mlp.fc1.').replace('ffn.layers.1.', 'mlp.fc2.')
        new = new.replace('patch_embed.projection', 'patch_embed.proj')
        if '.downsample.' in key:  # original order (dx, dy, c): the inverse of unfold_order
            c = value.shape[-1] // 4
            lead = value.shape[:-1]
            t = value.reshape(*lead, c, 2, 2)
            value = t.permute(*range(len(lead)), len(lead) + 2, len(lead) + 1,
                              len(lead)).reshape(*lead, 4 * c)
            assert torch.equal(unfold_order(value), source.state_dict()[key])
        if key.startswith('norm3.'):
            new = 'norm.' + key.split('.', 1)[1]
        if key.startswith(('norm0.', 'norm1.', 'norm2.')):
            continue  # the classifier has one final norm only
        original[new] = value
    path = tmp_path / 'swin_original.pth'
    torch.save({'model': original}, path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ours = build_backbone(dict(type='mmbackbones.mmdet.SwinTransformer', **SMALL,
                                   out_indices=(3, ), convert_weights=True,
                                   pretrained=str(path)))
    ours.init_weights()
    for key, value in ours.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key
