"""Host twins and the core classes: ``pretrained=`` alone changes nothing else, a host-only
argument given to a core class keeps its host meaning with one warning naming the twin and
switches no other default, and each twin builds the core module with the host's defaults."""
import warnings

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.models.host_args import HostArgumentWarning

SWIN = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])
VIT = dict(embed_dims=32, num_layers=3, num_heads=2)
# (type, tiny arguments) for every scope of every family with twins
BUILDS = [
    ('mmcls.VisionTransformer', dict(arch='deit-tiny', img_size=32, patch_size=8)),
    ('mmbackbones.mmseg.VisionTransformer', dict(img_size=32, patch_size=8, **VIT)),
    ('mmcls.SwinTransformer', dict(arch=SWIN, img_size=32)),
    ('mmbackbones.mmdet.SwinTransformer', dict(pretrain_img_size=32, **SWIN)),
    ('mmbackbones.mmseg.SwinTransformer', dict(pretrain_img_size=32, **SWIN)),
    ('mmcls.ResNet', dict(depth=18)),
    ('mmbackbones.mmdet.ResNet', dict(depth=18)),
    ('mmbackbones.mmseg.ResNetV1c', dict(depth=18)),
    ('mmbackbones.mmdet.ResNeXt', dict(depth=50, groups=2, base_width=4, base_channels=8)),
    ('mmcls.RegNet', dict(arch='regnetx_400mf')),
    ('mmbackbones.mmdet.RegNet', dict(arch='regnetx_400mf')),
]


def _build(cfg, expect_warnings=None):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        model = build_backbone(cfg)
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    if expect_warnings is not None:
        assert len(messages) == expect_warnings, messages
    return model, messages


def _describe(model):
    """Everything a config decides, except the init: modules with their settings (norm eps,
    biases, dropouts), parameter shapes, outputs, what trains."""
    return (torch.nn.Module.__repr__(model),  # BaseModule adds the init_cfg
            {k: tuple(v.shape) for k, v in model.state_dict().items()},
            model.out_channels, model.out_strides, model.out_names, model.norm_eval,
            model.frozen_stages, sorted(n for n, p in model.named_parameters()
                                        if p.requires_grad))


@pytest.mark.parametrize('kind,kwargs', BUILDS, ids=[b[0] for b in BUILDS])
def test_pretrained_alone_changes_nothing_else(kind, kwargs):
    plain, _ = _build(dict(type=kind, **kwargs), expect_warnings=0)
    loaded, messages = _build(dict(type=kind, pretrained='ckpt.pth', **kwargs),
                              expect_warnings=1)
    assert loaded.init_cfg == dict(type='Pretrained', checkpoint='ckpt.pth')
    assert _describe(loaded) == _describe(plain)
    if kind.startswith('mmcls.'):  # a host-only argument on the core: the warning names a twin
        assert "type='mmbackbones.mm" in messages[0]


# (core type, host-only arguments, the same model in mmpretrain's spelling, the twin named)
HOST_ARGS_ON_CORE = [
    ('VisionTransformer', dict(img_size=32, patch_size=8, **VIT),
     dict(img_size=32, patch_size=8, arch=dict(VIT, feedforward_channels=128)),
     'mmbackbones.mmseg.VisionTransformer'),
    ('VisionTransformer', dict(arch='deit-tiny', img_size=32, patch_size=8, patch_bias=False,
                               attn_drop_rate=0.1),
     dict(arch='deit-tiny', img_size=32, patch_size=8, patch_cfg=dict(bias=False),
          layer_cfgs=dict(attn_drop_rate=0.1)), 'mmbackbones.mmseg.VisionTransformer'),
    ('SwinTransformer', dict(img_size=32, mlp_ratio=2, patch_norm=False, **SWIN),
     dict(img_size=32, arch=SWIN, stage_cfgs=dict(block_cfgs=dict(ffn_ratio=2),
                                                  downsample_cfg=dict(norm_cfg=None)),
          patch_cfg=dict(norm_cfg=None)), 'mmbackbones.mmdet.SwinTransformer'),
    ('ResNet', dict(depth=18, stage_with_dcn=(False, ) * 4), dict(depth=18),
     'mmbackbones.mmdet.ResNet'),
    ('ResNeXt', dict(depth=50, groups=2, base_width=8, base_channels=8),
     dict(depth=50, groups=2, width_per_group=8, base_channels=8),
     'mmbackbones.mmdet.ResNeXt'),
    ('RegNet', dict(arch='regnetx_400mf', stage_with_dcn=(False, ) * 4),
     dict(arch='regnetx_400mf'), 'mmbackbones.mmdet.RegNet'),
]


@pytest.mark.parametrize('kind,given,same,twin', HOST_ARGS_ON_CORE,
                         ids=[f'{c[0]}-{"-".join(c[1])}' for c in HOST_ARGS_ON_CORE])
def test_host_argument_on_the_core_warns_once_and_switches_no_default(kind, given, same, twin):
    model, messages = _build(dict(type=f'mmcls.{kind}', **given), expect_warnings=1)
    assert f"type='{twin}'" in messages[0]
    reference, _ = _build(dict(type=f'mmcls.{kind}', **same), expect_warnings=0)
    assert _describe(model) == _describe(reference)


def test_host_argument_warning_is_its_own_category():
    with pytest.warns(HostArgumentWarning, match='mmbackbones.mmseg.ResNet'):
        build_backbone(dict(type='mmcls.ResNet', depth=18, contract_dilation=True,
                            dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1)))


@pytest.mark.parametrize('kind', ['mmcls.VisionTransformer', 'mmcls.SwinTransformer',
                                  'mmcls.ResNet', 'mmcls.RegNet'])
def test_unknown_argument_on_the_core_names_it_and_close_names(kind):
    with pytest.raises(TypeError, match=r"unknown argument 'frozen_stage'.*'frozen_stages'"):
        build_backbone(dict(type=kind, frozen_stage=1,
                            **(dict(arch='regnetx_400mf') if kind == 'mmcls.RegNet' else {})))


def test_mmseg_vit_twin_has_mmsegs_defaults():
    model = build_backbone(dict(type='mmbackbones.mmseg.VisionTransformer', img_size=64,
                                out_indices=(0, 2), **VIT))
    assert model.out_type == 'featmap' and model.ln1 is None  # final_norm=False
    assert model.patch_embed.projection.bias is None  # patch_bias=False
    assert model.layers[0].ln1.eps == 1e-5  # dict(type='LN')
    assert model.layers[0].ffn.layers[0][0].out_features == 4 * 32  # mlp_ratio=4
    assert model.frozen_exclude == ['all'] and all(p.requires_grad for p in model.parameters())
    out = model(torch.randn(1, 3, 50, 70))
    assert [o.shape for o in out] == [(1, 32, 4, 5)] * 2
    core = build_backbone(dict(type='mmcls.VisionTransformer', img_size=64,
                               arch=dict(VIT, feedforward_channels=128)))
    assert core.out_type == 'cls_token' and core.ln1 is not None
    assert core.layers[0].ln1.eps == 1e-6 and core.patch_embed.projection.bias is not None


def test_host_swin_twins_have_the_hosts_defaults():
    for host in ('mmdet', 'mmseg'):
        model = build_backbone(dict(type=f'mmbackbones.{host}.SwinTransformer', **SWIN))
        assert model.out_indices == (0, 1, 2, 3) and model.pad_small_map is True
        assert model.patch_embed.norm is not None and model.stages[0].downsample.norm is not None
    core = build_backbone(dict(type='mmcls.SwinTransformer', arch=SWIN))
    assert core.out_indices == (3, ) and core.pad_small_map is False


def test_mmdet_swin_twin_arguments_take_effect():
    model = build_backbone(dict(
        type='mmbackbones.mmdet.SwinTransformer', mlp_ratio=2, qkv_bias=False, qk_scale=0.5,
        act_cfg=dict(type='ReLU'), patch_norm=False, attn_drop_rate=0.1, drop_rate=0.2,
        pretrain_img_size=64, strides=(4, 2, 2, 2), convert_weights=True,
        norm_cfg=dict(type='LN', eps=1e-3), **SWIN))
    block = model.stages[0].blocks[0]
    assert block.ffn.layers[0][0].out_features == 2 * 16
    assert isinstance(block.ffn.layers[0][1], torch.nn.ReLU)
    assert block.attn.w_msa.qkv.bias is None and block.attn.w_msa.scale == 0.5
    assert block.attn.w_msa.attn_drop == 0.1
    assert block.ffn.layers[2].p == 0.2  # mmdet's drop_rate reaches the MLP
    assert block.norm1.eps == 1e-3  # and its norm_cfg the blocks
    assert model.patch_embed.norm is None and model.stages[0].downsample.norm is None
    assert model.img_size == (64, 64) and model.convert_weights is True
    assert model(torch.randn(1, 3, 37, 45))[3].shape == (1, 128, 2, 2)


@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(strides=(4, 2, 2, 1)), ValueError, 'strides'),
    (dict(patch_size=2), ValueError, 'strides'),
    (dict(mlp_ratio=0), ValueError, 'mlp_ratio'),
    (dict(qk_scale='big'), ValueError, 'qk_scale'),
    (dict(patch_norm='yes'), TypeError, 'patch_norm'),
    (dict(convert_weights=1), TypeError, 'convert_weights'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(pretrained=3), TypeError, 'pretrained'),
    (dict(pretrained='a.pth', init_cfg=dict(type='Kaiming')), ValueError, 'pretrained'),
    (dict(stage_cfgs=dict()), TypeError, "unknown argument 'stage_cfgs'"),
])
def test_mmdet_swin_twin_refuses_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build_backbone(dict(type='mmbackbones.mmdet.SwinTransformer', **kwargs))


def _trainable(model):
    model.train()
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('host', ['mmdet', 'mmseg'])
def test_swin_twin_counts_frozen_stages_as_the_hosts(host):
    """The hosts' ``k`` freezes the patch embedding and stages[0..k-1] (and the absolute position
    embedding); mmpretrain's ``k - 1`` the same modules, but not the position embedding."""
    for k in (0, 1, 4):
        twin = build_backbone(dict(type=f'mmbackbones.{host}.SwinTransformer', frozen_stages=k,
                                   use_abs_pos_embed=True, pretrain_img_size=32, **SWIN))
        core = build_backbone(dict(type='mmcls.SwinTransformer', arch=SWIN, img_size=32,
                                   out_indices=(0, 1, 2, 3), use_abs_pos_embed=True,
                                   pad_small_map=True, frozen_stages=k - 1))
        stem = {n for n, _ in twin.named_parameters()
                if n.startswith('patch_embed.') or n == 'absolute_pos_embed'}
        assert _trainable(twin) == _trainable(core) - stem  # k=0: the patch embedding only
        assert ('stages.0.blocks.0.attn.w_msa.qkv.weight' in _trainable(twin)) is (k == 0)
        assert ('stages.3.blocks.0.attn.w_msa.qkv.weight' in _trainable(twin)) is (k < 4)


def test_resnet_twins_have_the_hosts_defaults():
    mmdet = build_backbone(dict(type='mmbackbones.mmdet.ResNet', depth=18, base_channels=32))
    assert mmdet.out_indices == (0, 1, 2, 3) and mmdet.norm_eval is True
    assert mmdet.conv1.out_channels == 32  # stem_channels=None: as wide as base_channels
    mmseg = build_backbone(dict(type='mmbackbones.mmseg.ResNet', depth=18, base_channels=32))
    assert mmseg.out_indices == (0, 1, 2, 3) and mmseg.norm_eval is False
    assert mmseg.conv1.out_channels == 64
    core = build_backbone(dict(type='mmcls.ResNet', depth=18))
    assert core.out_indices == (3, ) and core.norm_eval is False
    v1d = build_backbone(dict(type='mmbackbones.mmdet.ResNetV1d', depth=18))
    assert v1d.deep_stem and v1d.avg_down and v1d.norm_eval is True
    resnext = build_backbone(dict(type='mmbackbones.mmseg.ResNeXt', depth=50, base_channels=8))
    assert resnext.layer1[0].conv2.groups == 1  # the hosts' groups=1
    regnet = build_backbone(dict(type='mmbackbones.mmdet.RegNet', arch='regnetx_400mf'))
    assert regnet.out_indices == (0, 1, 2, 3) and regnet.norm_eval is True
    with pytest.raises(TypeError):  # as in the hosts: the variant's flags are fixed
        build_backbone(dict(type='mmbackbones.mmseg.ResNetV1c', depth=18, deep_stem=False))
    with pytest.raises(TypeError, match="unknown argument 'multi_grid'"):  # mmseg's, not mmdet's
        build_backbone(dict(type='mmbackbones.mmdet.ResNet', depth=50, multi_grid=(1, 2, 4)))


def test_mmseg_resnet_twin_takes_multi_grid_without_a_warning():
    model, _ = _build(dict(type='mmbackbones.mmseg.ResNetV1c', depth=50,
                           strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), multi_grid=(1, 2, 4),
                           contract_dilation=True), expect_warnings=0)
    assert [b.conv2.dilation[0] for b in model.layer4] == [1, 2, 4]
    assert [b.conv2.dilation[0] for b in model.layer3] == [1, 2, 2, 2, 2, 2]


def test_build_backbone_reads_a_bare_host_scope_as_the_host_library():
    """``build_backbone(dict(type='mmdet.ResNet'))`` means mmdet's own class (the twin is
    ``mmbackbones.mmdet.ResNet``): without mmdet it is not found."""
    try:
        import mmdet.models  # noqa: F401
    except ImportError:
        with pytest.raises(KeyError):
            build_backbone(dict(type='mmdet.ResNet', depth=18))
    else:
        model = build_backbone(dict(type='mmdet.ResNet', depth=18))
        assert type(model).__module__.startswith('mmdet.')
