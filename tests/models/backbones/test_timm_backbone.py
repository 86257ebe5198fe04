"""TIMMBackbone: metadata, registry scope 'timm', freezing, norms, pretrained loading, errors."""
import os
import subprocess
import sys
import urllib.error

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

timm = pytest.importorskip('timm', reason='timm is an optional dependency')

from mmbackbones import build_backbone, load_config  # noqa: E402
from mmbackbones.builder import backbone_cfg_from_config  # noqa: E402
from mmbackbones.models.backbones.timm_backbone import (TIMMBackbone,  # noqa: E402
                                                        list_timm_models)
from mmbackbones.models.layers.norm import FrozenBatchNorm2d  # noqa: E402
from tests.parity import assert_frozen_bn_matches, mmpretrain_backbone  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))


def _check_outputs(model, outs, size):
    assert isinstance(outs, tuple) and len(outs) == len(model.out_channels)
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (1, c, -(-size[0] // s), -(-size[1] // s))


# ----- metadata ----------------------------------------------------------------------------------
def test_metadata_known_before_forward_and_outputs_follow_out_indices_order():
    model = TIMMBackbone('resnet10t', out_indices=(4, 1, 2))
    assert model.out_indices == (4, 1, 2)
    assert model.out_channels == (512, 64, 128)
    assert model.out_strides == (32, 4, 8)
    assert model.out_names == ('stage5', 'stage2', 'stage3')  # 1-based, like native families
    assert model.output_shape()['stage2'].stride == 4
    outs = model(torch.randn(1, 3, 64, 96))
    _check_outputs(model, outs, (64, 96))


def test_negative_and_default_out_indices():
    model = TIMMBackbone('convnext_atto', out_indices=(-1, -3))
    assert model.out_indices == (3, 1)
    assert model.out_strides == (32, 8)
    _check_outputs(model, model(torch.randn(1, 3, 64, 64)), (64, 64))
    default = TIMMBackbone('convnext_atto', features_only=True)
    assert default.out_indices == (0, 1, 2, 3)
    assert default.out_channels == (40, 80, 160, 320)


def test_vit_returns_spatial_maps_of_chosen_blocks():
    model = TIMMBackbone('vit_tiny_patch16_224', out_indices=(11, 5), dynamic_img_size=True)
    assert model.out_channels == (192, 192) and model.out_strides == (16, 16)
    assert model.out_names == ('stage12', 'stage6')
    _check_outputs(model, model(torch.randn(1, 3, 64, 96)), (64, 96))
    # blocks after the last requested one are not built (nothing unused: DDP-friendly)
    assert len(model.timm_model.model.blocks) == 12
    assert len(TIMMBackbone('vit_tiny_patch16_224', out_indices=(2, )).timm_model.model.blocks) \
        == 3


def test_output_stride_dilates_and_metadata_follows():
    model = TIMMBackbone('resnet10t', out_indices=(2, 3, 4), output_stride=8)
    assert model.out_strides == (8, 8, 8)
    _check_outputs(model, model(torch.randn(1, 3, 64, 64)), (64, 64))


def test_default_is_mmpretrains_one_final_map():
    """mmpretrain's TIMMBackbone defaults to features_only=False: one unpooled final map, the
    classifier and the global pooling removed. The same config gives the same output here; with
    out_indices (which mmpretrain's default refuses) features_only defaults to True."""
    theirs = mmpretrain_backbone('TIMMBackbone')(model_name='resnet18')
    theirs.eval()  # mmpretrain's train() returns None
    ours = build_backbone(dict(type='mmcls.TIMMBackbone', model_name='resnet18')).eval()
    assert ours.features_only is False and ours.out_names == ('final', )
    ours.timm_model.load_state_dict(theirs.timm_model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert len(got) == len(expected) == 1
    torch.testing.assert_close(got[0], expected[0])
    assert got[0].shape == (1, 512, 2, 2)
    assert isinstance(ours.timm_model.global_pool.pool, nn.Identity)
    assert isinstance(ours.timm_model.fc, nn.Identity)
    assert TIMMBackbone('resnet18', out_indices=(2, 4)).features_only is True


def test_timm_names_match_the_native_family():
    """Switching ConvNeXt to timm.convnext_* keeps every output name (1-based stage{k})."""
    native = build_backbone(dict(type='ConvNeXt', arch='atto', out_indices=(0, 1, 2, 3),
                                 gap_before_final_norm=False))
    wrapped = build_backbone(dict(type='timm.convnext_atto', out_indices=(0, 1, 2, 3)))
    assert wrapped.out_names == native.out_names == ('stage1', 'stage2', 'stage3', 'stage4')
    assert wrapped.out_strides == native.out_strides


def test_features_only_false_returns_final_features_as_one_tuple():
    vit = TIMMBackbone('vit_tiny_patch16_224', features_only=False)  # tokens: pooled (N, C)
    assert vit.out_channels == (192, ) and vit.out_strides == (None, )
    assert vit(torch.randn(1, 3, 224, 224))[0].shape == (1, 192)
    model = TIMMBackbone('resnet10t', features_only=False)
    outs = model(torch.randn(1, 3, 64, 64))
    assert isinstance(outs, tuple) and len(outs) == 1
    assert model.out_channels == (512, ) and model.out_strides == (32, )
    assert outs[0].shape == (1, 512, 2, 2)
    assert not any('fc' in n for n, _ in model.named_parameters())


def test_in_channels_reaches_timm_and_input_is_checked():
    model = TIMMBackbone('resnet10t', in_channels=1, out_indices=(1, ))
    assert model.timm_model.conv1[0].in_channels == 1
    assert model(torch.randn(1, 1, 32, 32))[0].shape == (1, 64, 8, 8)
    with pytest.raises(ValueError, match='in_channels=1'):
        model(torch.randn(1, 3, 32, 32))


# ----- the 'timm' registry scope ------------------------------------------------------------------
def test_every_timm_model_by_name_through_build_backbone():
    model = build_backbone(dict(type='timm.convnext_atto', out_indices=(1, 2, 3)))
    assert isinstance(model, TIMMBackbone) and model.model_name == 'convnext_atto'
    assert model.out_channels == (80, 160, 320)
    tagged = build_backbone(dict(type='timm.resnet10t.c3_in1k', out_indices=(1, )))
    assert tagged.model_name == 'resnet10t.c3_in1k'


def test_timm_scope_from_a_downstream_registry():
    from tests.toy_backbone import child_registry
    with child_registry('timm_scope_test') as downstream:
        model = downstream.build(dict(type='timm.resnet10t', out_indices=(2, 3)))
    assert isinstance(model, TIMMBackbone) and model.out_strides == (8, 16)


def test_unknown_timm_name_suggests_close_names():
    with pytest.raises(KeyError, match="convnext_tiny"):
        build_backbone(dict(type='timm.convnext_tinny'))
    from mmengine.registry import MODELS as ROOT
    with pytest.raises(KeyError, match="Did you mean 'resnet18'"):
        ROOT.build(dict(type='timm.resnet18x'))
    with pytest.raises(ValueError, match=r"model_name: 'efficientnet_bO' .*'efficientnet_b0'"):
        TIMMBackbone('efficientnet_bO')


def test_timm_scope_refuses_model_name_twice():
    with pytest.raises(TypeError, match='already names the timm model'):
        build_backbone(dict(type='timm.resnet10t', model_name='resnet18'))


def test_list_timm_models():
    names = list_timm_models('convnext_at')
    assert 'convnext_atto' in names and all('convnext_at' in n for n in names)
    assert list_timm_models('resnet1?t') == ['resnet10t', 'resnet14t']
    assert len(list_timm_models()) > 1000


# ----- freezing and norms -------------------------------------------------------------------------
def _frozen(module):
    return all(not p.requires_grad for p in module.parameters())


def _trainable(module):
    return all(p.requires_grad for p in module.parameters())


def test_frozen_stages_cnn_freezes_up_to_level_k():
    model = TIMMBackbone('resnet10t', features_only=True, frozen_stages=1).train()
    tm = model.timm_model
    assert _frozen(tm.conv1) and _frozen(tm.bn1) and _frozen(tm.layer1)
    assert _trainable(tm.layer2) and _trainable(tm.layer4)
    assert not tm.bn1.training and not tm.layer1[0].bn1.training
    assert tm.layer2[0].bn1.training
    groups = model.stem_and_stages()
    assert len(groups) == 5 and all(isinstance(g, nn.Module) for g in groups)


def test_frozen_stages_level_zero_includes_the_stem_for_convnext():
    model = TIMMBackbone('convnext_atto', features_only=True, frozen_stages=0).train()
    tm = model.timm_model
    assert _frozen(tm.stem_0) and _frozen(tm.stages_0)
    assert _trainable(tm.stages_1)


def test_frozen_stages_vit_freezes_embeddings_and_blocks():
    model = TIMMBackbone('vit_tiny_patch16_224', frozen_stages=1, out_indices=(3, )).train()
    vit = model.timm_model.model
    assert not vit.cls_token.requires_grad and not vit.pos_embed.requires_grad
    assert _frozen(vit.patch_embed) and _frozen(vit.blocks[0]) and _frozen(vit.blocks[1])
    assert _trainable(vit.blocks[2]) and _trainable(vit.blocks[3])
    assert not vit.blocks[1].training and vit.blocks[2].training


def test_norm_eval_keeps_batchnorms_in_eval_mode():
    model = TIMMBackbone('resnet10t', norm_eval=True, out_indices=(1, )).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(bn.training for bn in bns)
    assert _trainable(model)


@pytest.mark.parametrize('norm_layer', ['FrozenBN', FrozenBatchNorm2d])
def test_frozen_bn_keeps_outputs_and_fused_activations(norm_layer):
    for name in ('resnet10t', 'efficientnet_lite0'):  # plain BN, timm's BatchNormAct2d
        ref = TIMMBackbone(name, out_indices=(2, 3))
        for m in ref.modules():  # non-trivial statistics
            if isinstance(m, _BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        assert_frozen_bn_matches(ref, TIMMBackbone(name, out_indices=(2, 3),
                                                   norm_layer=norm_layer))


def test_norm_layer_class_or_registry_name_is_passed_to_timm():
    model = TIMMBackbone('resnet10t', norm_layer='SyncBN', out_indices=(1, ))
    assert isinstance(model.timm_model.bn1, nn.SyncBatchNorm)
    model = TIMMBackbone('resnet10t', norm_layer=nn.InstanceNorm2d, out_indices=(1, ))
    assert isinstance(model.timm_model.bn1, nn.InstanceNorm2d)


# ----- pretrained weights -------------------------------------------------------------------------
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and empty caches: the Hugging Face Hub answers at once, URLs fail at once."""
    import huggingface_hub.constants as hf_constants
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'torch_hub'))

    def no_download(*args, **kwargs):
        raise urllib.error.URLError('network disabled in this test')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_download)
    return tmp_path


def test_pretrained_without_network_says_how_to_pass_a_local_file(offline):
    with pytest.raises(RuntimeError) as info:
        TIMMBackbone('resnet10t', pretrained=True)
    message = str(info.value)
    assert "Could not download pretrained weights for timm model 'resnet10t'" in message
    assert 'checkpoint_path=' in message and 'pretrained_cfg_overlay=dict(file=' in message
    assert 'timm/resnet10t' in message  # where it tried


def _random_timm_model(name, **kwargs):
    torch.manual_seed(1)
    model = timm.create_model(name, **kwargs).eval()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def test_local_checkpoint_path_loads_into_features_only_model(offline):
    source = _random_timm_model('resnet10t')
    path = offline / 'resnet10t.pth'
    torch.save(source.state_dict(), path)
    model = TIMMBackbone('resnet10t', checkpoint_path=str(path), out_indices=(4, 2)).eval()
    x = torch.randn(1, 3, 64, 64)
    expected = source.forward_intermediates(x, indices=[2, 4], intermediates_only=True)
    outs = model(x)
    torch.testing.assert_close(outs[0], expected[1])
    torch.testing.assert_close(outs[1], expected[0])
    assert model.is_init  # init_weights() will not overwrite the loaded weights


def test_local_file_through_pretrained_cfg_overlay_safetensors(offline):
    from safetensors.torch import save_file
    source = _random_timm_model('vit_tiny_patch16_224')
    path = offline / 'vit.safetensors'
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model = build_backbone(dict(type='timm.vit_tiny_patch16_224', pretrained=True,
                                pretrained_cfg_overlay=dict(file=str(path)),
                                out_indices=(3, 7))).eval()
    x = torch.randn(1, 3, 224, 224)
    expected = source.forward_intermediates(x, indices=[3, 7], intermediates_only=True)
    for out, exp in zip(model(x), expected):
        torch.testing.assert_close(out, exp)


def test_local_checkpoint_of_another_model_fails_loudly(offline):
    path = offline / 'other.pth'
    torch.save(_random_timm_model('resnet14t').state_dict(), path)
    with pytest.raises(RuntimeError, match='size mismatch|Missing key|Unexpected key'):
        TIMMBackbone('resnet10t', checkpoint_path=str(path))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        TIMMBackbone('resnet10t', checkpoint_path=str(offline / 'missing.pth'))


# ----- bad arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs, error, pattern', [
    (dict(out_indices=(7, )), ValueError, r'out_indices contains 7, out of range.*-5\.\.4'),
    (dict(out_indices=(-9, )), ValueError, r'out_indices contains -9'),
    (dict(out_indices=(1, 1)), ValueError, 'must not repeat'),
    (dict(out_indices='1'), TypeError, 'out_indices must be'),
    (dict(out_indices=()), TypeError, 'out_indices must be'),
    (dict(frozen_stages=5), ValueError, r'frozen_stages must be in -1\.\.4'),
    (dict(frozen_stages=1.0), TypeError, 'frozen_stages must be an int'),
    (dict(features_only='yes'), TypeError, 'features_only must be a bool'),
    (dict(pretrained='weights.pth'), TypeError, 'pretrained must be a bool'),
    (dict(in_channels=0), ValueError, 'in_channels must be a positive int'),
    (dict(output_stride='8'), TypeError, 'output_stride must be an int'),
    (dict(output_stride=3), ValueError, 'output_stride must be one of 8, 16, 32'),
    (dict(norm_layer='Nope'), ValueError, "norm_layer='Nope' is not a norm layer name"),
    (dict(in_chans=1), TypeError, "'in_chans' is set by TIMMBackbone"),
    (dict(not_an_arg=1), TypeError, "does not accept.*not_an_arg"),
    (dict(features_only=False, out_indices=(1, )), ValueError, 'needs features_only=True'),
    (dict(norm_layer=3), TypeError, 'norm_layer must be'),
    (dict(pretrained_cfg_overlay=dict(file='x.pth')), ValueError, 'only read with pretrained'),
])
def test_bad_arguments_name_the_argument(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        TIMMBackbone('resnet10t', **kwargs)


def test_bad_model_name_type():
    with pytest.raises(TypeError, match='model_name must be'):
        TIMMBackbone(None)


# ----- configs and import lightness --------------------------------------------------------------
@pytest.mark.parametrize('name', sorted(os.listdir(os.path.join(REPO, 'configs', 'timm'))))
def test_timm_configs_build(name):
    cfg = backbone_cfg_from_config(load_config(os.path.join(REPO, 'configs', 'timm', name)))
    with torch.device('meta'):  # full-size models: structure and metadata only
        model = build_backbone(cfg)
    assert isinstance(model, TIMMBackbone)
    assert len(model.out_channels) == len(model.out_strides) >= 1


def test_importing_the_wrapper_modules_imports_neither_timm_nor_torchvision():
    code = ('import sys\n'
            'import mmbackbones.models\n'
            'from mmbackbones.models.backbones import timm_backbone, torchvision_backbone\n'
            'from mmbackbones.registry import TIMM_MODELS\n'
            "print(sorted(m for m in ('timm', 'torchvision') if m in sys.modules))")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == '[]'


def test_init_weights_keeps_timm_pretrained_and_runs_timm_init_otherwise(tmp_path):
    source = _random_timm_model('vit_tiny_patch16_224')
    path = tmp_path / 'vit.pth'
    torch.save(source.state_dict(), path)
    loaded = TIMMBackbone('vit_tiny_patch16_224', features_only=False, checkpoint_path=str(path))
    before = loaded.timm_model.pos_embed.clone()
    loaded.init_weights()  # already initialised from the checkpoint: left alone
    assert torch.equal(before, loaded.timm_model.pos_embed)
    fresh = TIMMBackbone('vit_tiny_patch16_224', features_only=False)
    fresh.init_weights()  # timm's own init_weights() of the wrapped model runs without error
    assert fresh.out_channels == (192, ) and fresh(torch.randn(1, 3, 224, 224))[0].shape == \
        (1, 192)


def test_mmengine_pretrained_init_cfg_loads_a_backbone_checkpoint(tmp_path):
    source = TIMMBackbone('resnet10t', out_indices=(2, 4)).eval()
    path = tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=source.state_dict()), path)
    model = TIMMBackbone('resnet10t', out_indices=(2, 4),
                         init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(source(x), model.eval()(x)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('name, size', [('vit_tiny_patch16_224', (64, 96)), ('resnet10t', (5, 5)),
                                        ('levit_128s', (5, 7))])
def test_unsupported_input_sizes_raise_a_value_error_about_the_input(name, size):
    model = TIMMBackbone(name, features_only=True).eval()
    try:
        with torch.no_grad():
            outs = model(torch.randn(1, 3, *size))
    except ValueError as e:
        assert f"timm model {name!r} cannot run on an input of size {size}" in str(e)
        if name.startswith('vit'):
            assert 'dynamic_img_size=True' in str(e)
    else:
        assert len(outs) == len(model.out_channels)  # small inputs may simply work
