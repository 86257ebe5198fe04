"""``mmbackbones.detrex``'s TorchvisionResNet, SwinTransformer and ConvNeXt against detrex's and
detectron2's own classes: same state-dict keys and shapes, same outputs on the same weights, same
``output_shape()``, same trainable parameters, and their checkpoints loading through detectron2's
``DetectionCheckpointer`` (what detrex's ``train.init_checkpoint`` uses) both ways."""
import functools

import pytest
import torch
from torch import nn

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')
pytest.importorskip('detrex', reason='detrex is not installed (make test-detectron2)')

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling import Backbone  # noqa: E402
from detectron2.modeling.backbone import SwinTransformer as D2Swin  # noqa: E402
from detrex.modeling.backbone import ConvNeXt as DetrexConvNeXt  # noqa: E402
from detrex.modeling.backbone import FocalNet as DetrexFocalNet  # noqa: E402
from detrex.modeling.backbone.torchvision_resnet import \
    TorchvisionResNet as DetrexTorchvisionResNet  # noqa: E402

import mmbackbones.detrex as ours  # noqa: E402
from mmbackbones.checkpoint.keys import own_state_dict  # noqa: E402
from mmbackbones.checkpoint.state import CheckpointMismatchError  # noqa: E402
from mmbackbones.integrations.detectron2 import Detectron2Backbone  # noqa: E402
from mmbackbones.models.backbones.swin import SwinTransformer as CoreSwin  # noqa: E402


def perturbed_state(model: nn.Module, seed: int = 0) -> dict:
    """The model's state with every float tensor moved off its init (variances kept > 0), but
    EVA-02's rotary tables (``freqs_cos``/``freqs_sin`` buffers: functions of the config that
    detrex stores, not weights)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not key.endswith(('freqs_cos', 'freqs_sin')):
            value = value + 0.05 * torch.randn(value.shape, generator=gen)
            if key.endswith('running_var'):
                value = value.abs() + 0.5
        out[key] = value
    return out


def assert_same_backbone(theirs: nn.Module, mine: nn.Module, x: torch.Tensor) -> None:
    """Keys (in order) and shapes, outputs on the same weights, trainable tensors."""
    state = perturbed_state(theirs)
    theirs.load_state_dict(state)
    assert list(mine.state_dict()) == list(state)
    assert {k: v.shape for k, v in mine.state_dict().items()} == \
        {k: v.shape for k, v in state.items()}
    mine.load_state_dict(state, strict=True)
    for key, value in mine.state_dict().items():  # what we save is what we loaded
        assert torch.equal(value, state[key]), key
    trainable = {k for k, v in theirs.state_dict(keep_vars=True).items() if v.requires_grad}
    assert {k for k, v in mine.state_dict(keep_vars=True).items() if v.requires_grad} == \
        trainable
    theirs.eval(), mine.eval()
    with torch.no_grad():
        expected, got = theirs(x), mine(x)
    assert list(got) == list(expected)
    for name in expected:
        assert_close_to_scale(got[name], expected[name])


def assert_close_to_scale(got: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    """Equal to float rounding relative to the map's scale (perturbed deep ResNets reach 1e4)."""
    assert got.shape == expected.shape
    scale = float(expected.abs().max()) + 1.0
    assert float((got - expected).abs().max()) <= tol * scale, \
        f'max diff {float((got - expected).abs().max())} at scale {scale}'


# ----- TorchvisionResNet -------------------------------------------------------------------------
@pytest.mark.parametrize('name,return_layers,dilation,train_backbone', [
    ('resnet50', {'layer4': 'res5'}, True, True),  # every DC5 DETR config
    ('resnet50', {'layer2': 'res3', 'layer4': 'res5'}, False, False),
    ('resnet18', {'layer3': 'res4'}, False, True),
    ('resnext50_32x4d', {'layer4': 'res5'}, True, True),
])
def test_torchvision_resnet_matches_detrex(name, return_layers, dilation, train_backbone):
    torch.manual_seed(0)
    theirs = DetrexTorchvisionResNet(name, train_backbone, return_layers, dilation)
    mine = ours.TorchvisionResNet(name, train_backbone, return_layers, dilation)
    assert isinstance(mine, Backbone) and mine.num_channels == theirs.num_channels
    assert_same_backbone(theirs, mine, torch.randn(2, 3, 72, 56))
    strides = {'layer1': 4, 'layer2': 8, 'layer3': 16, 'layer4': 16 if dilation else 32}
    assert {k: v.stride for k, v in mine.output_shape().items()} == \
        {out: strides[layer] for layer, out in return_layers.items()}


def test_torchvision_resnet_loads_a_torchvision_file_and_refuses_bad_arguments():
    import torchvision
    tv = torchvision.models.resnet50()
    mine = ours.TorchvisionResNet('resnet50', True, dilation=True)
    mine.load_state_dict(tv.state_dict())  # classifier and BN counters left out
    assert torch.equal(mine.body.layer4[2].conv3.weight, tv.layer4[2].conv3.weight)
    assert torch.equal(mine.body.bn1.running_var, tv.bn1.running_var)
    with pytest.raises(ValueError, match='name'):
        ours.TorchvisionResNet('resnet51', True)
    with pytest.raises(ValueError, match='return_layers key'):
        ours.TorchvisionResNet('resnet50', True, {'layer5': 'res6'})
    with pytest.raises(ValueError, match='BasicBlock'):
        ours.TorchvisionResNet('resnet18', True, dilation=True)


# ----- SwinTransformer ---------------------------------------------------------------------------
SWIN = dict(embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], drop_path_rate=0.)


@pytest.mark.parametrize('extra', [
    dict(out_indices=(1, 2, 3)),  # detrex's Swin configs
    dict(out_indices=(0, 1, 2, 3), window_size=4, ape=True, pretrain_img_size=64,
         norm_layer=functools.partial(nn.LayerNorm, eps=1e-6)),
    dict(out_indices=(3, ), frozen_stages=3, patch_norm=False),
])
def test_swin_matches_detectron2(extra):
    torch.manual_seed(0)
    theirs, mine = D2Swin(**SWIN, **extra), ours.SwinTransformer(**SWIN, **extra)
    assert isinstance(mine, Backbone)
    assert_same_backbone(theirs, mine, torch.randn(2, 3, 61, 77))
    assert mine.output_shape() == theirs.output_shape()
    # detectron2 means 32 (its property reads a misspelt attribute and raises AttributeError)
    assert mine.size_divisibility == 32
    # the parameters keep the core's names; own_state_dict gives them
    assert 'stages.0.blocks.0.attn.w_msa.qkv.weight' in dict(mine.named_parameters())
    assert 'stages.0.blocks.0.attn.w_msa.qkv.weight' in own_state_dict(mine)


class _Model(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


def test_swin_checkpoints_through_detection_checkpointer(tmp_path):
    """detrex's checkpoint (``backbone.layers...``) into our twin and into
    ``Detectron2Backbone(core SwinTransformer)``; our twin's checkpoint into detectron2's."""
    torch.manual_seed(0)
    theirs = D2Swin(**SWIN, out_indices=(1, 2, 3)).eval()
    theirs.load_state_dict(perturbed_state(theirs))
    torch.save({'model': _Model(theirs).state_dict()}, tmp_path / 'detrex.pth')
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        expected = theirs(x)
    twin = _Model(ours.SwinTransformer(**SWIN, out_indices=(1, 2, 3)).eval())
    adapter = _Model(Detectron2Backbone(CoreSwin(
        arch=dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]),
        out_indices=(1, 2, 3), pad_small_map=True), rename={'stage2': 'p1', 'stage3': 'p2',
                                                           'stage4': 'p3'}).eval())
    for model in (twin, adapter):
        DetectionCheckpointer(model).load(str(tmp_path / 'detrex.pth'))
        with torch.no_grad():
            got = model.backbone(x)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-4)
    DetectionCheckpointer(twin, save_dir=str(tmp_path)).save('ours')
    back = _Model(D2Swin(**SWIN, out_indices=(1, 2, 3)).eval())
    back.load_state_dict(torch.load(tmp_path / 'ours.pth', weights_only=False)['model'])
    with torch.no_grad():
        for name, value in back.backbone(x).items():
            torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-5)


def test_swin_half_checkpoint_is_refused():
    theirs = D2Swin(**SWIN, out_indices=(1, 2, 3))
    state = theirs.state_dict()
    del state['layers.2.blocks.1.mlp.fc1.weight']
    mine = ours.SwinTransformer(**SWIN, out_indices=(1, 2, 3))
    before = {k: v.clone() for k, v in mine.state_dict().items()}
    with pytest.raises(CheckpointMismatchError):
        mine.load_state_dict(state, strict=False)
    assert all(torch.equal(v, before[k]) for k, v in mine.state_dict().items())


def test_swin_refuses_bad_arguments():
    with pytest.raises(TypeError, match='norm_layer'):
        ours.SwinTransformer(**SWIN, norm_layer=nn.BatchNorm1d)
    with pytest.raises(ValueError, match='frozen_stages'):
        ours.SwinTransformer(**SWIN, frozen_stages=7)


# ----- ConvNeXt ----------------------------------------------------------------------------------
CONVNEXT = dict(depths=[1, 1, 2, 1], dims=[16, 32, 64, 128])


@pytest.mark.parametrize('extra', [
    dict(out_indices=[1, 2, 3], layer_scale_init_value=1.0),  # detrex's DINO configs
    dict(frozen_stages=2),
    dict(out_indices=[0, 2], layer_scale_init_value=0.0),
])
def test_convnext_matches_detrex(extra):
    torch.manual_seed(0)
    theirs, mine = DetrexConvNeXt(**CONVNEXT, **extra), ours.ConvNeXt(**CONVNEXT, **extra)
    assert isinstance(mine, Backbone)
    if extra.get('out_indices') == [0, 2]:  # detrex builds all four stages, we what is used
        state = perturbed_state(theirs)
        theirs.load_state_dict(state)
        assert set(mine.state_dict()) == {k for k in state if not k.startswith(
            ('stages.3.', 'downsample_layers.3.'))}
        missing, unexpected = mine.load_state_dict(state, strict=False)
        assert not missing and all(k.endswith('.3') or '.3.' in k for k in unexpected)
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            expected, got = theirs.eval()(x), mine.eval()(x)
        for name in ('p0', 'p2'):
            torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-4)
        return
    assert_same_backbone(theirs, mine, torch.randn(2, 3, 72, 56))
    assert mine.output_shape() == theirs.output_shape()
    assert mine.size_divisibility == theirs.size_divisibility


def test_convnext_checkpoint_through_detection_checkpointer(tmp_path):
    theirs = DetrexConvNeXt(**CONVNEXT, out_indices=[1, 2, 3]).eval()
    theirs.load_state_dict(perturbed_state(theirs))
    torch.save({'model': _Model(theirs).state_dict()}, tmp_path / 'detrex.pth')
    mine = _Model(ours.ConvNeXt(**CONVNEXT, out_indices=[1, 2, 3]).eval())
    DetectionCheckpointer(mine).load(str(tmp_path / 'detrex.pth'))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = theirs(x), mine.backbone(x)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('mine,theirs', [
    (ours.TorchvisionResNet, DetrexTorchvisionResNet), (ours.SwinTransformer, D2Swin),
    (ours.ConvNeXt, DetrexConvNeXt), (ours.FocalNet, DetrexFocalNet)],
    ids=['TorchvisionResNet', 'SwinTransformer', 'ConvNeXt', 'FocalNet'])
def test_signatures_are_detrex(mine, theirs):
    """Same argument names, order, kinds and defaults as the classes detrex's configs call."""
    import inspect

    def described(cls):
        return [(p.name, p.kind, p.default)
                for p in inspect.signature(cls.__init__).parameters.values()]

    assert mine.__name__ == theirs.__name__
    assert described(mine) == described(theirs)


# ----- FocalNet ----------------------------------------------------------------------------------
FOCALNET = dict(embed_dim=16, depths=[2, 2, 2, 2], drop_path_rate=0.)


@pytest.mark.parametrize('extra', [
    dict(out_indices=(1, 2, 3)),  # detrex's FocalNet-T configs
    dict(focal_levels=[4] * 4, focal_windows=[3] * 4, use_conv_embed=True, use_postln=True,
         use_layerscale=True, use_postln_in_modulation=True, normalize_modulator=True,
         frozen_stages=3),  # the large/huge variants' switches
])
def test_focalnet_matches_detrex(tmp_path, extra):
    torch.manual_seed(0)
    theirs, mine = DetrexFocalNet(**FOCALNET, **extra), ours.FocalNet(**FOCALNET, **extra)
    assert isinstance(mine, Backbone)
    assert_same_backbone(theirs, mine, torch.randn(2, 3, 61, 77))
    assert mine.output_shape() == theirs.output_shape()
    assert mine.size_divisibility == theirs.size_divisibility
    torch.save({'model': _Model(theirs).state_dict()}, tmp_path / 'detrex.pth')
    again = _Model(ours.FocalNet(**FOCALNET, **extra).eval())
    DetectionCheckpointer(again).load(str(tmp_path / 'detrex.pth'))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = theirs.eval()(x), again.backbone(x)
    for name in expected:
        assert_close_to_scale(got[name], expected[name])
