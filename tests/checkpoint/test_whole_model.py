"""Whole-model checkpoints, both ways, against the real timm and torchvision.

Into ours: a native model's weights, saved as a whole-model checkpoint (``backbone.<native
key>`` plus a head) and loaded by mmengine's ``load_checkpoint(model, path, strict=False)`` (the
runner's ``load_from``/``resume`` route) or a plain ``model.load_state_dict``, are converted by
the backbone's load hook and give the native outputs. Back out: our checkpoint, written by
``convert_checkpoint_to(..., to=...)``, loads with ``strict=True`` into the native module and
gives ours. A checkpoint that fits the backbone only partly is refused, and nothing is loaded.
"""
import pytest
import torch
from torch import nn

timm = pytest.importorskip('timm', reason='timm is not installed')
torchvision = pytest.importorskip('torchvision', reason='torchvision is not installed')

from mmbackbones import build_backbone  # noqa: E402
from mmbackbones.checkpoint import CheckpointMismatchError  # noqa: E402
from mmbackbones.checkpoint.convert import convert_checkpoint_to, to_native  # noqa: E402


def _timm(name, **kwargs):
    return lambda: timm.create_model(name, pretrained=False, num_classes=0, **kwargs)


def _tv_resnet18():
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Identity()
    return model


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


# name -> (native factory, native forward, our config, input size)
CASES = {
    'timm-resnet18': (_timm('resnet18'), lambda m, x: m.forward_features(x),
                      dict(type='ResNet', depth=18, out_indices=(3,)), 32),
    'timm-resnet50d': (_timm('resnet50d'), lambda m, x: m.forward_features(x),
                       dict(type='ResNetV1d', depth=50, out_indices=(3,)), 32),
    'timm-vit': (_timm('vit_tiny_patch16_224', depth=2, img_size=32),
                 lambda m, x: m.forward_features(x),
                 dict(type='VisionTransformer', img_size=32, patch_size=16, out_type='raw',
                      arch=dict(embed_dims=192, num_layers=2, num_heads=3,
                                feedforward_channels=768)), 32),
    'timm-swin': (_timm('swin_tiny_patch4_window7_224', embed_dim=16, num_heads=(1, 2, 4, 8)),
                  lambda m, x: m.forward_features(x).permute(0, 3, 1, 2),
                  dict(type='SwinTransformer', img_size=224, out_indices=(3,),
                       arch=dict(embed_dims=16, depths=[2, 2, 6, 2], num_heads=[1, 2, 4, 8])),
                  224),
    'timm-convnext': (_timm('convnext_atto'), lambda m, x: m.forward_head(
        m.forward_features(x), pre_logits=True),
                      dict(type='ConvNeXt', arch='atto', linear_pw_conv=False), 32),
    'timm-regnetx': (_timm('regnetx_004'), lambda m, x: m.forward_features(x),
                     dict(type='RegNet', arch='regnetx_400mf', out_indices=(3,)), 32),
    'torchvision-resnet18': (_tv_resnet18, lambda m, x: m.layer4(m.layer3(m.layer2(m.layer1(
        m.maxpool(m.relu(m.bn1(m.conv1(x)))))))), dict(type='ResNet', depth=18,
                                                       out_indices=(3,)), 32),
}
TARGET = {'timm-resnet18': 'timm', 'timm-resnet50d': 'timm', 'timm-vit': 'timm',
          'timm-swin': 'timm', 'timm-convnext': 'timm', 'timm-regnetx': 'timm',
          'torchvision-resnet18': 'torchvision'}


class Detector(nn.Module):
    """A whole model around one of our backbones (what mmdet/mmseg/detectron2 build)."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone = build_backbone(cfg)
        self.head = nn.Linear(4, 2)


def _randomise(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                if key.endswith('running_var'):
                    value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.75)
                else:
                    value.add_(torch.randn(value.shape, generator=gen) * 0.02)


def _pair(case):
    factory, forward, cfg, size = CASES[case]
    torch.manual_seed(0)
    native = factory().eval()
    _randomise(native, 1)
    model = Detector(cfg).eval()
    return native, forward, model, size


def _assert_same(native, forward, backbone, size):
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = forward(native, x), _first(backbone(x))
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


@pytest.mark.parametrize('case', list(CASES))
def test_native_whole_model_loads_through_mmengine(case, tmp_path):
    from mmengine.runner import load_checkpoint
    native, forward, model, size = _pair(case)
    weights = {f'backbone.{k}': v for k, v in native.state_dict().items()}
    weights.update({f'head.{k}': v for k, v in model.head.state_dict().items()})
    path = tmp_path / 'native_whole.pth'
    torch.save({'meta': {}, 'state_dict': weights}, path)
    load_checkpoint(model, str(path), map_location='cpu', strict=False)
    _assert_same(native, forward, model.backbone, size)
    # what we save stays in our names
    ours = build_backbone(CASES[case][2]).state_dict()
    assert list(model.backbone.state_dict()) == list(ours)


@pytest.mark.parametrize('case', ['timm-resnet50d', 'timm-vit', 'torchvision-resnet18'])
def test_plain_load_state_dict_converts(case):
    native, forward, model, size = _pair(case)
    weights = {f'backbone.{k}': v for k, v in native.state_dict().items()}
    weights.update({f'head.{k}': v for k, v in model.head.state_dict().items()})
    result = model.load_state_dict(weights, strict=False)
    assert [k for k in result.missing_keys if 'num_batches' not in k] == []
    _assert_same(native, forward, model.backbone, size)


@pytest.mark.parametrize('case', list(CASES))
def test_ours_written_for_the_native_library_loads_strict(case, tmp_path):
    native, forward, model, size = _pair(case)
    _randomise(model.backbone, 3)  # ours now differs from native: the file must carry ours
    src = tmp_path / 'ours_whole.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, src)
    dst = tmp_path / 'native.pth'
    summary = convert_checkpoint_to(str(src), str(dst), to=TARGET[case])
    assert summary['prefix'] == 'backbone.'
    written = torch.load(dst, map_location='cpu', weights_only=True)
    backbone = {k[len('backbone.'):]: v for k, v in written.items() if k.startswith('backbone.')}
    assert set(written) - {f'backbone.{k}' for k in backbone} == {'head.weight', 'head.bias'}
    native.load_state_dict(backbone, strict=True)
    _assert_same(native, forward, model.backbone, size)


def test_a_backbone_checkpoint_converts_too(tmp_path):
    native, forward, model, size = _pair('timm-resnet50d')
    src = tmp_path / 'ours.pth'
    torch.save(model.backbone.state_dict(), src)
    dst = tmp_path / 'timm.pth'
    assert convert_checkpoint_to(str(src), str(dst), to='timm')['prefix'] == ''
    native.load_state_dict(torch.load(dst, weights_only=True), strict=True)
    _assert_same(native, forward, model.backbone, size)


def test_partial_native_checkpoint_is_refused_and_nothing_loaded(tmp_path):
    from mmengine.runner import load_checkpoint
    native, _, model, _ = _pair('timm-resnet50d')
    weights = {f'backbone.{k}': v for k, v in native.state_dict().items()
               if not k.startswith('layer4.')}
    path = tmp_path / 'partial.pth'
    torch.save({'state_dict': weights}, path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match='nothing was loaded'):
        load_checkpoint(model, str(path), strict=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(CheckpointMismatchError, match='layer4'):
        model.load_state_dict(weights, strict=False)


def test_mixed_layout_is_refused():
    """Our names for the stem, timm's deep stem for nothing: a layout matching partly."""
    native, _, model, _ = _pair('timm-resnet50d')
    weights = {f'backbone.{k}': v for k, v in model.backbone.state_dict().items()
               if not k.startswith('stem.2.')}
    weights['backbone.conv1.6.weight'] = native.state_dict()['conv1.6.weight']
    with pytest.raises(CheckpointMismatchError):
        model.load_state_dict(weights, strict=False)


def test_our_own_layout_is_loaded_as_is():
    _, _, model, _ = _pair('timm-resnet18')
    other = Detector(CASES['timm-resnet18'][2])
    _randomise(other, 5)
    model.load_state_dict(other.state_dict(), strict=True)
    for key, value in other.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_timm_and_torchvision_wrappers_both_ways():
    ours = build_backbone(dict(type='TIMMBackbone', model_name='resnet18', features_only=True,
                               pretrained=False))
    native = timm.create_model('resnet18', pretrained=False, features_only=True)
    _randomise(native, 4)
    ours.load_state_dict(native.state_dict(), strict=True)
    for key, value in native.state_dict().items():
        assert torch.equal(ours.state_dict()['timm_model.' + key], value)
    back = to_native(ours.state_dict(), 'timm')
    assert set(back) == set(native.state_dict())
    with pytest.raises(ValueError, match='TIMMBackbone holds a timm model'):
        to_native(ours.state_dict(), 'torchvision')


@pytest.mark.parametrize('cfg, to, why', [
    (dict(type='ResNetV1c', depth=18), 'torchvision', 'deep stem'),
    (dict(type='ResNetV1d', depth=18), 'detectron2', 'one-conv stem'),
    (dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                              feedforward_channels=64), img_size=32), 'mmdet',
     'mmdet 3.x ships no VisionTransformer'),
    (dict(type='ConvNeXt', arch='atto', out_indices=(0, 3)), 'timm', 'one final norm'),
    (dict(type='SwinTransformer', arch=dict(embed_dims=16, depths=[1, 1, 1, 1],
                                            num_heads=[1, 1, 1, 1]), out_indices=(0, 1, 2, 3)), 'timm',
     'one final norm'),
    (dict(type='RegNet', arch='regnetx_400mf'), 'mmseg', 'mmseg ships no RegNet'),
])
def test_to_refuses_what_the_layout_cannot_express(cfg, to, why):
    state = build_backbone(cfg).state_dict()
    with pytest.raises(ValueError, match=why):
        to_native(state, to)


def test_cli_convert_to(tmp_path):
    import sys

    sys.path.insert(0, str(__import__('pathlib').Path(__file__).parents[1]))
    from cli_helpers import assert_one_line_error, run_cli
    model = Detector(dict(type='ResNet', depth=18, out_indices=(3,)))
    _randomise(model, 6)
    src = tmp_path / 'ours.pth'
    torch.save({'state_dict': model.state_dict()}, src)
    result = run_cli('convert', src, tmp_path / 'tv.pth', '--to', 'torchvision')
    assert result.returncode == 0, result.stderr
    assert "ResNet in the torchvision layout (backbone under 'backbone.')" in result.stdout
    native = _tv_resnet18().eval()
    written = torch.load(tmp_path / 'tv.pth', weights_only=True)
    native.load_state_dict({k[9:]: v for k, v in written.items() if k.startswith('backbone.')})
    _assert_same(native, CASES['torchvision-resnet18'][1], model.backbone.eval(), 32)
    deep = Detector(dict(type='ResNetV1c', depth=18))
    torch.save({'state_dict': deep.state_dict()}, src)
    result = run_cli('convert', src, tmp_path / 'no.pth', '--to', 'torchvision')
    assert_one_line_error(result, 'convert --to torchvision', 'deep stem')
    assert not (tmp_path / 'no.pth').exists()
