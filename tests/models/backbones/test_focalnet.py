"""FocalNet: the core module (official parameter names). Parity with detrex's own FocalNet (the
official detection backbone) is tests/detectron2/test_detrex_backbones.py; timm's FocalNet (other
names) has no converter yet."""
import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.models.backbones.focalnet import FocalNet, arch_settings
from tests.parity import (assert_config_builds_and_runs, assert_every_parameter_gets_gradients,
                          assert_frozen_stages, assert_with_cp_matches, family_configs)

SMALL = dict(embed_dims=16, depths=[1, 2, 1, 1], focal_levels=[2, 3, 2, 2],
             focal_windows=[3, 3, 5, 3])
LARGE_STYLE = dict(SMALL, use_postln=True, use_conv_embed=True, use_layerscale=True,
                   use_postln_in_modulation=True)


def test_arch_table_is_timms():
    timm_focalnet = pytest.importorskip('timm.models.focalnet')
    import inspect
    source = inspect.getsource(timm_focalnet)
    for name, arch in arch_settings.items():
        assert f'def focalnet_{name}(' in source, name
        model = getattr(timm_focalnet, f'focalnet_{name}')
        cfg = {}
        try:  # timm's builders pass their variant kwargs to FocalNet
            captured = {}
            orig = timm_focalnet._create_focalnet
            timm_focalnet._create_focalnet = lambda variant, pretrained=False, **kw: \
                captured.update(kw)
            model()
            cfg = captured
        finally:
            timm_focalnet._create_focalnet = orig
        assert cfg['embed_dim'] == arch['embed_dims'] and list(cfg['depths']) == arch['depths']
        assert list(cfg.get('focal_levels', (2, 2, 2, 2))) == arch['focal_levels']
        assert list(cfg.get('focal_windows', (3, 3, 3, 3))) == arch['focal_windows']
        assert cfg.get('use_post_norm', False) == arch.get('use_postln', False)
        assert cfg.get('use_overlap_down', False) == arch.get('use_conv_embed', False)
        assert cfg.get('use_post_norm_in_modulation', False) == \
            arch.get('use_postln_in_modulation', False)


@pytest.mark.parametrize('arch', [SMALL, LARGE_STYLE])
@pytest.mark.parametrize('size', [(64, 64), (61, 45)])
def test_outputs_and_metadata(arch, size):
    model = FocalNet(arch, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert model.out_names == ('stage1', 'stage2', 'stage3', 'stage4')
    assert model.out_channels == (16, 32, 64, 128) and model.out_strides == (4, 8, 16, 32)
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, c, -(-size[0] // s), -(-size[1] // s))


def test_only_needed_stages_are_built_and_every_parameter_is_used():
    model = FocalNet(SMALL, out_indices=(1, ))
    assert len(model.layers) == 2 and model.layers[1].downsample is None
    assert not any(k.startswith(('layers.2', 'norm0', 'norm3')) for k in model.state_dict())
    assert_every_parameter_gets_gradients(FocalNet(LARGE_STYLE, out_indices=(0, 1, 2, 3)))


def test_frozen_stages_and_with_cp():
    assert_frozen_stages(FocalNet(SMALL, out_indices=(0, 1, 2, 3), frozen_stages=2), 2)
    torch.manual_seed(0)
    plain = FocalNet(LARGE_STYLE, out_indices=(0, 1, 2, 3), drop_path_rate=0.)
    assert_with_cp_matches(plain, FocalNet(LARGE_STYLE, out_indices=(0, 1, 2, 3),
                                           drop_path_rate=0., with_cp=True))


@pytest.mark.parametrize('kwargs, error, fragment', [
    (dict(arch='tiny'), ValueError, 'arch'),
    (dict(arch=dict(SMALL, depths=[1, 1])), ValueError, 'one entry per stage'),
    (dict(arch=dict(SMALL, window=3)), KeyError, 'unknown keys'),
    (dict(arch=dict(SMALL, use_postln='yes')), TypeError, 'use_postln'),
    (dict(arch=SMALL, out_indices=(4, )), ValueError, 'out_indices'),
    (dict(arch=SMALL, drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(arch=SMALL, mlp_ratio=0), ValueError, 'mlp_ratio'),
])
def test_bad_arguments_are_refused(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        FocalNet(**kwargs)


def test_official_classification_file_converts():
    source = FocalNet(SMALL, out_indices=(3, ))
    official = {k: v for k, v in source.state_dict().items() if not k.startswith('norm3')}
    official.update({'norm.weight': source.norm3.weight, 'norm.bias': source.norm3.bias,
                     'head.weight': torch.zeros(10, 128), 'head.bias': torch.zeros(10)})
    converted, used = convert_state_dict(
        official, 'auto', {k: tuple(v.shape) for k, v in source.state_dict().items()})
    assert used == 'detrex_focalnet' and set(converted) == set(source.state_dict())
    target = FocalNet(SMALL, out_indices=(3, ))
    target.load_state_dict(official)  # through the load hooks
    assert torch.equal(target.norm3.weight, source.norm3.weight)


@pytest.mark.parametrize('path', family_configs('focalnet'))
def test_shipped_configs_build(path):
    assert_config_builds_and_runs(path, FocalNet, size=64)


def test_registered():
    assert isinstance(build_backbone(dict(type='FocalNet', arch=SMALL)), FocalNet)


@pytest.mark.parametrize('timm_kwargs, arch', [
    (dict(focal_levels=(2, 3, 2, 2), focal_windows=(3, 3, 5, 3)), SMALL),
    (dict(focal_levels=(2, 3, 2, 2), focal_windows=(3, 3, 5, 3), use_post_norm=True,
          use_post_norm_in_modulation=True, use_overlap_down=True, layerscale_value=0.5),
     LARGE_STYLE),
])
def test_timm_checkpoint_converts_and_matches(tmp_path, timm_kwargs, arch):
    timm_focalnet = pytest.importorskip('timm.models.focalnet')
    torch.manual_seed(0)
    theirs = timm_focalnet.FocalNet(embed_dim=16, depths=(1, 2, 1, 1), drop_path_rate=0.,
                                    **timm_kwargs).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / 'timm_focalnet.pth'
    torch.save(theirs.state_dict(), path)
    mine = FocalNet(arch, out_indices=(3, ), layerscale_value=0.5,
                    init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    mine.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(mine.eval()(x)[0], theirs.forward_features(x), rtol=1e-4,
                                   atol=1e-4)
