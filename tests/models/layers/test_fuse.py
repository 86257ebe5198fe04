"""Folding eval-mode BatchNorm/FrozenBN into convs: which pairs are found, and exactness."""
import pytest
import torch
from torch import nn

from mmbackbones.models.layers import FrozenBatchNorm2d
from mmbackbones.models.layers.conv_norm_act import ConvNormAct
from mmbackbones.models.layers.fuse import (conv_add_relu, conv_relu, fold_conv_norm, fuse_conv_bn,
                                            is_foldable_norm, pointwise_kernels_available)


def _random_bn(bn, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if bn.weight is not None:
            bn.weight.copy_(torch.rand(bn.weight.shape, generator=gen) + 0.5)
            bn.bias.copy_(torch.rand(bn.bias.shape, generator=gen) - 0.5)
        bn.running_mean.copy_(torch.rand(bn.running_mean.shape, generator=gen) - 0.5)
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=gen) + 0.5)
    return bn


def _randomize_norms(model):
    for i, m in enumerate(model.modules()):
        if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d)):
            _random_bn(m, seed=i)
    return model


def _assert_fused_equal(model, x, expected_count):
    model.eval()
    with torch.no_grad():
        expected = model(x)
        count = fuse_conv_bn(model)
        got = model(x)
    assert count == expected_count
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    return model


@pytest.mark.parametrize('bias,affine', [(False, True), (True, True), (False, False)])
def test_sequential_conv_bn(bias, affine):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=bias),
                          _random_bn(nn.BatchNorm2d(8, affine=affine)), nn.ReLU(),
                          nn.Conv2d(8, 4, 1, groups=2), _random_bn(nn.BatchNorm2d(4), 1))
    _assert_fused_equal(model, torch.randn(2, 3, 9, 9), 2)
    assert isinstance(model[1], nn.Identity) and isinstance(model[4], nn.Identity)
    assert model[0].bias is not None


def test_frozen_bn_and_conv_norm_act_and_mmcv_conv_module():
    from mmcv.cnn import ConvModule
    model = nn.Sequential(
        ConvNormAct(3, 8, 3, norm_cfg=dict(type='FrozenBN')),
        ConvModule(8, 8, 3, padding=1, norm_cfg=dict(type='BN')),
        # act before norm: the norm does not follow the conv, nothing may be folded
        ConvModule(8, 8, 1, norm_cfg=dict(type='BN'), order=('conv', 'act', 'norm')))
    _randomize_norms(model)
    _assert_fused_equal(model, torch.randn(1, 3, 8, 8), 2)
    assert isinstance(model[2].norm, nn.BatchNorm2d)


def test_detectron2_style_conv_owning_its_norm():
    class D2Conv(nn.Conv2d):
        def __init__(self, *args, norm=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.norm = norm

        def forward(self, x):
            x = super().forward(x)
            return self.norm(x) if self.norm is not None else x

    model = nn.Module()
    model.conv1 = D2Conv(3, 8, 3, bias=False, norm=_random_bn(nn.BatchNorm2d(8)))
    model.forward = lambda x: model.conv1(x).relu()
    _assert_fused_equal(model, torch.randn(1, 3, 8, 8), 1)


def test_undeclared_pre_activation_block_is_left_alone():
    class PreAct(nn.Module):  # bn1 runs before conv1: folding it into conv1 would be wrong
        def __init__(self):
            super().__init__()
            self.bn1 = _random_bn(nn.BatchNorm2d(4))
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv1(self.bn1(x).relu())

    _assert_fused_equal(PreAct(), torch.randn(1, 4, 6, 6), 0)


def test_training_mode_norms_are_not_folded():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    assert fuse_conv_bn(model) == 0 and isinstance(model[1], nn.BatchNorm2d)
    assert not is_foldable_norm(model[1]) and is_foldable_norm(FrozenBatchNorm2d(4))
    assert not is_foldable_norm(nn.BatchNorm2d(4, track_running_stats=False).eval())
    with pytest.raises(ValueError, match='can only fold an eval-mode BatchNorm'):
        fold_conv_norm(model[0], model[1])
    with pytest.raises(ValueError, match='norm has 5 channels but the conv outputs 4'):
        fold_conv_norm(model[0], nn.BatchNorm2d(5).eval())


def test_torchvision_resnet_blocks_are_declared():
    torchvision = pytest.importorskip('torchvision', reason='torchvision is optional')
    model = _randomize_norms(torchvision.models.resnet18(weights=None))
    model.fc = nn.Identity()
    _assert_fused_equal(model, torch.randn(1, 3, 32, 32), 20)


@pytest.mark.parametrize('conv', [
    nn.Conv2d(8, 16, 3, padding=1),
    nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=4),
    nn.Conv2d(8, 16, 1, bias=False),
], ids=['3x3', 'strided-dilated-grouped', '1x1-nobias'])
@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_conv_relu_kernels_match_plain_ops(conv, channels_last):
    x = torch.randn(2, 8, 11, 10)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        plain = torch.relu(conv(x))
        other = torch.randn_like(plain)
        plain_add = torch.relu(conv(x) + other)
        fast, fast_add = conv_relu(conv, x), conv_add_relu(conv, x, other)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast_add, plain_add, rtol=1e-5, atol=1e-5)
    # with autograd the plain ops run and gradients flow
    y = conv_add_relu(conv, x.requires_grad_(), other)
    y.sum().backward()
    assert x.grad is not None and conv.weight.grad is not None


def test_pointwise_kernel_probe_is_a_bool():
    assert pointwise_kernels_available() in (True, False)


def test_fused_kernels_stay_out_of_traced_graphs():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, t):
            return conv_add_relu(self.conv, conv_relu(self.conv, t), t)

    block = Block().eval()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        traced = torch.jit.trace(block, x)
        expected = block(x)
    graph = str(traced.inlined_graph)
    assert 'mkldnn' not in graph and 'relu' in graph
    with torch.no_grad():
        torch.testing.assert_close(traced(x), expected)


def test_fused_kernel_skipped_where_aten_prefers_its_gemm(monkeypatch):
    """Single-threaded, fewer than 16 images, unstrided 1x1: ATen's GEMM beats oneDNN (ATen's own
    use_mkldnn rule), so the fused kernel is not used there; results are the same either way."""
    from mmbackbones.models.layers import fuse
    conv = nn.Conv2d(8, 16, 1)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 1)
    assert fuse._native_is_faster(conv, torch.randn(2, 8, 5, 5))
    assert not fuse._native_is_faster(conv, torch.randn(16, 8, 5, 5))
    assert not fuse._native_is_faster(nn.Conv2d(8, 16, 1, stride=2), torch.randn(2, 8, 5, 5))
    assert not fuse._native_is_faster(nn.Conv2d(8, 16, 3), torch.randn(2, 8, 5, 5))
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(conv_relu(conv, x), torch.relu(conv(x)))
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 2)
    assert not fuse._native_is_faster(conv, torch.randn(2, 8, 5, 5))
