"""Round trips: checkpoints of other libraries, created here, load into our modules."""
import pickle

import numpy as np
import pytest
import torch

from mmbackbones.checkpoint import convert_state_dict, detect_format, load_checkpoint
from mmbackbones.checkpoint.convert import convert_checkpoint
from mmbackbones.cli import main as cli_main
from mmbackbones.checkpoint.converters import available_converters

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _assert_features(ours, ref_outs, x=X):
    ours.eval()
    with torch.no_grad():
        outs = ours(x)
    assert len(outs) == len(ref_outs)
    for i, (a, b) in enumerate(zip(outs, ref_outs)):
        assert a.shape == b.shape, i
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=f'output {i}')


def test_converters_are_discovered():
    names = {c.name for c in available_converters()}
    assert {'torchvision_resnet', 'timm_resnet', 'detectron2_resnet',
            'mmpretrain_classifier'} <= names


def test_torchvision_resnet18_round_trip(tmp_path, tiny_resnet, ref_features, randomize_bn):
    torchvision = pytest.importorskip('torchvision', reason='torchvision is optional')
    tv = randomize_bn(torchvision.models.resnet18()).eval()
    path = tmp_path / 'resnet18-tv.pth'
    torch.save(tv.state_dict(), path)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    with torch.no_grad():
        _assert_features(model, ref_features(tv, X))


def test_torchvision_explicit_convert_and_strict(tmp_path, tiny_resnet):
    torchvision = pytest.importorskip('torchvision', reason='torchvision is optional')
    tv = torchvision.models.resnet18()
    path = tmp_path / 'tv.pth'
    torch.save(tv.state_dict(), path)
    model = tiny_resnet()
    report = load_checkpoint(model, str(path), convert='torchvision', strict=True)
    assert report.ok and 'converted with torchvision_resnet' in report.notes
    # without conversion the classifier is reported as unexpected
    report = load_checkpoint(tiny_resnet(), str(path), convert=None)
    assert report.unexpected == ['fc.weight', 'fc.bias']


def test_timm_resnet18_round_trip(tmp_path, tiny_resnet, ref_features, randomize_bn):
    timm = pytest.importorskip('timm', reason='timm is optional')
    ref = randomize_bn(timm.create_model('resnet18', pretrained=False)).eval()
    path = tmp_path / 'timm_r18.pth'
    torch.save(ref.state_dict(), path)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path), convert='timm',
                                      strict=True))
    model.init_weights()
    with torch.no_grad():
        _assert_features(model, ref_features(ref, X))


def test_timm_resnet18d_deep_stem_to_resnetv1d(tmp_path, ref_features, randomize_bn):
    timm = pytest.importorskip('timm', reason='timm is optional')
    from mmbackbones import build_backbone
    ref = randomize_bn(timm.create_model('resnet18d', pretrained=False)).eval()
    path = tmp_path / 'timm_r18d.safetensors'
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    assert [c.name for c in detect_format(ref.state_dict())] == ['timm_resnet']
    model = build_backbone(dict(type='ResNetV1d', depth=18, out_indices=(0, 1, 2, 3),
                                init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                              strict=True)))
    model.init_weights()
    with torch.no_grad():
        _assert_features(model, ref_features(ref, X))


def test_timm_vit_tiny_round_trip(tmp_path):
    timm = pytest.importorskip('timm', reason='timm is optional')
    from mmbackbones import build_backbone
    ref = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=32, depth=2,
                            num_classes=0).eval()
    path = tmp_path / 'vit_tiny.pth'
    torch.save({'state_dict': ref.state_dict()}, path)
    model = build_backbone(dict(type='VisionTransformer', arch=dict(embed_dims=192, num_layers=2,
                                                                    num_heads=3,
                                                                    feedforward_channels=768),
                                img_size=32, patch_size=16, out_type='cls_token',
                                init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                              strict=True)))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ours = model(x)[-1]
        theirs = ref.forward_head(ref.forward_features(x), pre_logits=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_timm_vit_pos_embed_resized_on_load(tmp_path, mm_log):
    timm = pytest.importorskip('timm', reason='timm is optional')
    from mmbackbones import build_backbone
    ref = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=32, depth=1,
                            num_classes=0)
    path = tmp_path / 'vit_tiny_32.pth'
    torch.save(ref.state_dict(), path)
    model = build_backbone(dict(type='VisionTransformer', arch=dict(embed_dims=192, num_layers=1,
                                                                    num_heads=3,
                                                                    feedforward_channels=768),
                                img_size=64, patch_size=16))
    report = load_checkpoint(model, str(path), strict=True)
    assert report.ok
    assert model.pos_embed.shape == (1, 1 + 16, 192)
    # the class-token entry is copied, the grid interpolated
    assert torch.equal(model.pos_embed[:, 0], ref.pos_embed[:, 0])


def _detectron2_pkl(tv, path, whole_model=False):
    """Write ``tv``'s weights as detectron2 does: convert-torchvision-to-d2 names, numpy arrays
    in ``{'model': ...}``, pickled."""
    out = {}
    for k, v in tv.state_dict().items():
        if 'num_batches_tracked' in k:
            continue
        old = k
        if 'layer' not in k:
            k = 'stem.' + k
        for t in [1, 2, 3, 4]:
            k = k.replace(f'layer{t}', f'res{t + 1}')
        for t in [1, 2, 3]:
            k = k.replace(f'bn{t}', f'conv{t}.norm')
        k = k.replace('downsample.0', 'shortcut').replace('downsample.1', 'shortcut.norm')
        if whole_model:
            k = 'backbone.bottom_up.' + k
        out[k] = tv.state_dict()[old].numpy()
    if whole_model:
        out['roi_heads.box_predictor.cls_score.weight'] = np.zeros((81, 1024), np.float32)
    with open(path, 'wb') as f:
        pickle.dump({'model': out, '__author__': 'torchvision', 'matching_heuristics': True}, f)


@pytest.mark.parametrize('whole_model', [False, True])
def test_detectron2_pkl_round_trip(tmp_path, tiny_resnet, ref_features, randomize_bn,
                                   whole_model):
    torchvision = pytest.importorskip('torchvision', reason='torchvision is optional')
    tv = randomize_bn(torchvision.models.resnet18()).eval()
    path = tmp_path / 'R-18.pkl'
    _detectron2_pkl(tv, path, whole_model)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                      convert='detectron2', strict=True))
    model.init_weights()
    with torch.no_grad():
        _assert_features(model, ref_features(tv, X))
    # auto-detection finds the same layout
    auto = tiny_resnet()
    report = load_checkpoint(auto, str(path))
    assert 'converted with detectron2_resnet' in report.notes and report.ok


def test_explicit_convert_that_does_not_fit_is_an_error(tmp_path, tiny_resnet):
    path = tmp_path / 'native.pth'
    torch.save(tiny_resnet().state_dict(), path)
    with pytest.raises(ValueError, match="convert='detectron2': the keys match none"):
        load_checkpoint(tiny_resnet(), str(path), convert='detectron2')
    with pytest.raises(ValueError, match='convert must be one of'):
        load_checkpoint(tiny_resnet(), str(path), convert='caffe')


def test_auto_keeps_native_checkpoints_unchanged(tiny_resnet):
    sd = tiny_resnet().state_dict()
    target = {k: tuple(v.shape) for k, v in sd.items()}
    out, used = convert_state_dict(sd, 'auto', target)
    assert used is None and list(out) == list(sd)


def test_convert_checkpoint_writes_safetensors_that_load_strictly(tmp_path, tiny_resnet):
    timm = pytest.importorskip('timm', reason='timm is optional')
    ref = timm.create_model('resnet18', pretrained=False)
    src = tmp_path / 'timm.pth'
    torch.save(ref.state_dict(), src)
    summary = convert_checkpoint(str(src), str(tmp_path / 'r18'), convert='timm',
                                 model=dict(type='ResNet', depth=18), strict=True)
    assert summary['dst'].endswith('r18.safetensors') and summary['converter'] == 'timm_resnet'
    from safetensors import safe_open
    with safe_open(summary['dst'], 'pt') as f:
        assert 'fc.weight' not in f.keys()
        assert f.metadata()['converter'] == 'timm_resnet'
    model = tiny_resnet()
    assert load_checkpoint(model, summary['dst'], convert=None, strict=True).ok
    assert torch.equal(model.state_dict()['layer3.1.conv2.weight'],
                       ref.state_dict()['layer3.1.conv2.weight'])


def test_convert_command_and_errors(tmp_path, tiny_resnet, capsys):
    src = tmp_path / 'cls.pth'
    sd = {f'backbone.{k}': v for k, v in tiny_resnet().state_dict().items()}
    torch.save({'state_dict': sd}, src)
    dst = tmp_path / 'out.pth'
    assert cli_main(['convert', str(src), str(dst), '--prefix', 'backbone', '--add-prefix',
                         'backbone.']) == 0
    assert 'wrote' in capsys.readouterr().out
    written = torch.load(dst, weights_only=True)['state_dict']
    assert set(written) == set(sd)
    assert cli_main(['convert', str(src), str(tmp_path / 'x.safetensors'), '--prefix', 'neck']) == 2
    assert "prefix 'neck' matches no key" in capsys.readouterr().err
    assert cli_main(['convert', str(tmp_path / 'missing.pth'), str(tmp_path / 'y')]) == 2
    assert 'not found' in capsys.readouterr().err


def test_raw_library_checkpoint_into_wrapper_backbone(tmp_path):
    timm = pytest.importorskip('timm', reason='timm is optional')
    from mmbackbones import build_backbone
    ref = timm.create_model('resnet18', pretrained=False)
    path = tmp_path / 'timm_r18.pth'
    torch.save(ref.state_dict(), path)
    model = build_backbone(dict(type='TIMMBackbone', model_name='resnet18',
                                init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    loaded = model.state_dict()
    assert torch.equal(loaded['timm_model.layer3.0.conv1.weight'],
                       ref.state_dict()['layer3.0.conv1.weight'])
    report = load_checkpoint(model, str(path))
    assert "converted with wrapper prefix 'timm_model.'" in report.notes
    assert not report.missing


@pytest.mark.parametrize('name,cfg', [
    ('cspresnet50', dict(type='CSPResNet', depth=50)),
    ('cspresnext50', dict(type='CSPResNeXt', depth=50)),
])
def test_timm_cspnet_round_trip(tmp_path, randomize_bn, name, cfg):
    timm = pytest.importorskip('timm', reason='timm is optional')
    from mmbackbones import build_backbone
    ref = randomize_bn(timm.create_model(name, pretrained=False)).eval()
    path = tmp_path / f'{name}.pth'
    torch.save(ref.state_dict(), path)
    assert [c.name for c in detect_format(ref.state_dict())] == ['timm_cspnet']
    model = build_backbone(dict(cfg, out_indices=(0, 1, 2, 3),
                                init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                              strict=True)))
    model.init_weights()
    x = X[:1, :, :32, :32]
    with torch.no_grad():
        refs = ref.forward_intermediates(x, intermediates_only=True)[-4:]
        _assert_features(model, refs, x)


def test_timm_cspnet_variants_without_counterpart_are_refused():
    from mmbackbones.checkpoint.converters.timm_cspnet import convert_timm_cspnet
    sd = {'stem.conv1.conv.weight': torch.zeros(1), 'stem.conv2.conv.weight': torch.zeros(1),
          'stages.0.conv_exp.conv.weight': torch.zeros(1),
          'stages.0.conv_transition_b.conv.weight': torch.zeros(1)}
    with pytest.raises(KeyError, match='max pool'):
        convert_timm_cspnet(sd)
    del sd['stages.0.conv_transition_b.conv.weight']
    with pytest.raises(KeyError, match='stages.0 .* no conv_transition_b'):
        convert_timm_cspnet(sd)


def test_timm_poolformer_round_trip(tmp_path):
    timm = pytest.importorskip('timm', reason='timm is optional')
    import torch.nn.functional as F

    from mmbackbones import build_backbone
    ref = timm.create_model('poolformer_s12', pretrained=False).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # norms and layer scales away from their init
        for name, param in ref.named_parameters():
            if 'norm' in name or 'scale' in name:
                param.copy_(torch.rand(param.shape, generator=g) + 0.5)
    path = tmp_path / 'poolformer_s12.pth'
    torch.save(ref.state_dict(), path)
    model = build_backbone(dict(type='PoolFormer', arch='s12', out_indices=(0, 2, 4, 6),
                                init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()  # norm0/2/4 are ours (named in the report), norm6 is timm's head.norm
    x = X[:1]
    with torch.no_grad():
        stages = ref.forward_intermediates(x, intermediates_only=True)
    # our outputs go through GroupNorm(1) output norms (fresh ones but the last)
    refs = [F.group_norm(s, 1, eps=1e-5) for s in stages[:3]]
    refs.append(F.group_norm(stages[3], 1, ref.head.norm.weight, ref.head.norm.bias, eps=1e-5))
    _assert_features(model, refs, x)
