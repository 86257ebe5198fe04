"""PoolFormer: parity with mmpretrain's (names, outputs, arguments), our contract, configs."""
import os

import pytest
import torch

from mmbackbones import build_backbone, build_backbone_from_config
from mmbackbones.models.backbones.poolformer import PoolFormer
from tests.parity import assert_mmpretrain_parity, family_configs, mmpretrain_backbone

TINY = dict(layers=[1, 1, 2, 1], embed_dims=[8, 16, 24, 32], mlp_ratios=[2, 3, 4, 4],
            layer_scale_init_value=1e-4)
CONFIGS = family_configs('poolformer')


def _randomize(model):
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize('kwargs', [
    dict(arch='s12', out_indices=[0, 2, 4, 6]),
    dict(arch=TINY, out_indices=[0, 1, 2, 3, 4, 5, 6], pool_size=5),
    dict(arch=TINY, out_indices=-1, in_patch_size=4, in_stride=4, in_pad=0,
         norm_cfg=dict(type='GN', num_groups=2), act_cfg=dict(type='ReLU')),
])
def test_mmpretrain_checkpoint_loads_and_outputs_match(kwargs, tmp_path):
    theirs = mmpretrain_backbone('PoolFormer')(frozen_stages=-1, **kwargs)
    ours = assert_mmpretrain_parity(
        theirs, lambda init_cfg: build_backbone(dict(type='mmcls.PoolFormer', frozen_stages=-1,
                                                     **kwargs, init_cfg=init_cfg)),
        tmp_path, [(64, 48)], randomize=_randomize, batch=1)
    with torch.no_grad():
        got = ours(torch.randn(1, 3, 64, 48))
    assert len(got) == len(ours.out_names)
    for a, c, s in zip(got, ours.out_channels, ours.out_strides):
        assert a.shape == (1, c, -(-64 // s), -(-48 // s))


def test_arch_settings_and_custom_arch_match_mmpretrain():
    theirs = mmpretrain_backbone('PoolFormer')
    assert PoolFormer.arch_settings == theirs.arch_settings
    model = PoolFormer(arch=TINY, drop_path_rate=0.3)
    blocks = [b for stage in model.network if isinstance(stage, torch.nn.Sequential)
              for b in stage]
    assert [len(s) for s in model.network[::2]] == TINY['layers']
    assert [b.mlp.fc1.out_channels for b in blocks] == [16, 48, 96, 96, 128]
    assert all(torch.all(b.layer_scale_1 == 1e-4) for b in blocks)
    # stochastic depth rises linearly over all blocks from 0, as mmpretrain's
    assert isinstance(blocks[0].drop_path, torch.nn.Identity)
    assert [b.drop_path.drop_prob for b in blocks[1:]] == pytest.approx([0.075, 0.15, 0.225, 0.3])


def test_metadata_names_and_order():
    model = PoolFormer(arch=TINY, out_indices=(6, 0, 3))
    assert model.out_names == ('stage4', 'stage1', 'downsample2')
    assert model.out_channels == (32, 8, 24) and model.out_strides == (32, 4, 16)
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 2, 2), (2, 8, 16, 16), (2, 24, 4, 4)]
    assert len(PoolFormer(arch=TINY, out_indices=(2, )).network) == 3  # nothing unused built
    # no downsample where the width stays: positions shift, each norm fits its position
    # (mmpretrain sizes norm{i} as embed_dims[(i + 1) // 2] and fails on this arch)
    same = PoolFormer(arch=dict(layers=[1, 1, 1, 1], embed_dims=[8, 8, 16, 16]),
                      out_indices=(0, 1, 2, 3, 4))
    assert same.out_names == ('stage1', 'stage2', 'downsample2', 'stage3', 'stage4')
    assert same.out_channels == (8, 8, 16, 16, 16) and same.out_strides == (4, 4, 8, 8, 8)
    assert [o.shape[1] for o in same(torch.randn(1, 3, 32, 32))] == [8, 8, 16, 16, 16]


def test_default_frozen_stages_freezes_the_stem_as_mmpretrain():
    ours = PoolFormer(arch=TINY)
    theirs = mmpretrain_backbone('PoolFormer')(arch=TINY)
    for model in (ours, theirs):
        model.train()
        assert not model.patch_embed.training
        assert not any(p.requires_grad for p in model.patch_embed.parameters())
        assert all(p.requires_grad for p in model.network.parameters())


def test_frozen_stages_k_freezes_stages_and_their_downsamples_and_norms():
    model = PoolFormer(arch=TINY, out_indices=(0, 2, 4, 6), frozen_stages=2).train()
    frozen = [model.patch_embed, model.network[0], model.network[1], model.network[2],
              model.norm0, model.norm2]
    for module in frozen:
        assert not any(p.requires_grad for p in module.parameters())
    assert not model.network[2][0].norm1.training and model.network[4][0].norm1.training
    for module in (model.network[3], model.network[4], model.norm4, model.norm6):
        assert all(p.requires_grad for p in module.parameters())


@pytest.mark.parametrize('kwargs, error, words', [
    (dict(arch='unknown'), ValueError, 'arch'),
    (dict(arch=dict(embed_dims=96, num_heads=[3, 6])), ValueError, '"layers"'),
    (dict(arch=dict(layers=[2, 2], embed_dims=[8, 16, 32])), ValueError, "arch['embed_dims']"),
    (dict(out_indices=7), ValueError, 'out_indices'),
    (dict(out_indices={1: 1}), TypeError, 'out_indices'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(norm_cfg='GN'), TypeError, 'norm_cfg'),
    (dict(drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(pool_size=0), ValueError, 'pool_size'),
])
def test_bad_arguments_are_refused_naming_the_argument(kwargs, error, words):
    with pytest.raises(error, match=None) as info:
        PoolFormer(**kwargs)
    assert words in str(info.value)


def test_configs_build():
    assert {f'poolformer-{a}.py' for a in ('s12', 's24', 's36', 'm36', 'm48')} <= \
        {os.path.basename(p) for p in CONFIGS}
    model = build_backbone_from_config(next(p for p in CONFIGS if p.endswith('-s12.py')))
    assert model.out_strides == (4, 8, 16, 32) and model.out_channels == (64, 128, 320, 512)
    assert model.frozen_stages == -1
