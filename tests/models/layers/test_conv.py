"""The CPU fast paths of ``layers/conv.py`` and their one switch.

``StridedPointwiseConv2d`` (a strided 1x1 conv computed on the subsampled input on the CPU) must
be the ``nn.Conv2d`` it replaces in every observable way (outputs, gradients, state dict, output
size on odd sides), be what the builders give for plain 1x1 strided convs only (while the switch
is on), and keep the strided kernel where the subsampled one is not the faster or not traceable.
``ChannelsLastMaxPool2d`` must equal ``nn.MaxPool2d``. ``apply_cpu_fast_paths`` switches a built
model both ways without changing its outputs or state dict."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.models.layers.conv import (ChannelsLastMaxPool2d, StridedPointwiseConv2d,
                                            apply_cpu_fast_paths, is_strided_pointwise,
                                            set_cpu_fast_paths, strided_pointwise_conv2d)
from mmbackbones.models.layers.mmcv_bricks import build_conv_layer


@pytest.fixture
def conv2d_strides(monkeypatch):
    """The strides ``F.conv2d`` is called with from now on (a list that grows)."""
    seen = []
    real_conv2d = F.conv2d

    def spy(input, weight, bias=None, stride=1, *args):
        seen.append(tuple(stride) if isinstance(stride, (tuple, list)) else stride)
        return real_conv2d(input, weight, bias, stride, *args)

    monkeypatch.setattr(F, 'conv2d', spy)
    return seen


@pytest.fixture
def fast_paths_off():
    previous = set_cpu_fast_paths(False)
    yield
    set_cpu_fast_paths(previous)


def _pair(cin=8, cout=12, stride=2, groups=1, bias=True):
    torch.manual_seed(0)
    ref = nn.Conv2d(cin, cout, 1, stride=stride, groups=groups, bias=bias)
    ours = StridedPointwiseConv2d(cin, cout, 1, stride=stride, groups=groups, bias=bias)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize('stride', [2, 3, (2, 1), (1, 3)])
@pytest.mark.parametrize('size', [(16, 16), (15, 17), (1, 1), (2, 7)])
@pytest.mark.parametrize('groups,bias', [(1, True), (4, False)])
def test_same_outputs_and_gradients_as_the_strided_conv(stride, size, groups, bias):
    ref, ours = _pair(stride=stride, groups=groups, bias=bias)
    x = torch.randn(3, 8, *size)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ref(xa), ours(xb)
    assert ya.shape == yb.shape
    torch.testing.assert_close(yb, ya, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)


def test_empty_batch_and_channels_last_input():
    ref, ours = _pair()
    channels_last = torch.randn(2, 8, 9, 9).to(memory_format=torch.channels_last)
    for x in (torch.randn(0, 8, 9, 9), channels_last):
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_the_subsampled_kernel_is_taken_only_for_contiguous_cpu_input_in_eager_mode(
        conv2d_strides):
    seen = conv2d_strides
    _, ours = _pair()
    x = torch.randn(2, 8, 10, 10)
    ours(x)
    ours(x.to(memory_format=torch.channels_last))
    traced = torch.jit.trace(ours, x, check_trace=False)
    assert seen == [1, (2, 2), (2, 2)]
    torch.testing.assert_close(traced(x), ours(x))
    assert 'aten::slice' not in str(traced.graph)


def test_without_a_backward_the_strided_kernel_runs(conv2d_strides):
    ref, ours = _pair()
    x = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        out = ours(x)
    with torch.inference_mode():
        ours(x)
    ours.requires_grad_(False)
    ours(x)  # frozen weights, an input without grad: nothing to differentiate
    ours(x.requires_grad_())  # a gradient for the input: the subsampled kernel
    assert conv2d_strides == [(2, 2), (2, 2), (2, 2), 1]
    torch.testing.assert_close(out, ref(x), rtol=1e-5, atol=1e-5)


def test_state_dict_and_class_contract():
    ref, ours = _pair()
    assert isinstance(ours, nn.Conv2d)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for bad in (dict(kernel_size=3, stride=2), dict(kernel_size=1, stride=1),
                dict(kernel_size=1, stride=2, padding=1)):
        with pytest.raises(ValueError, match='kernel_size=1, padding=0 and a stride above 1'):
            StridedPointwiseConv2d(4, 4, **bad)


def test_is_strided_pointwise():
    assert is_strided_pointwise(1, 2, 0)
    assert is_strided_pointwise((1, 1), (1, 2), 'valid')
    assert not is_strided_pointwise(1, 1, 0)
    assert not is_strided_pointwise(3, 2, 1)
    assert not is_strided_pointwise(1, 2, 0, padding_mode='reflect')


def test_builder_substitutes_only_plain_strided_pointwise_convs():
    for cfg in (None, dict(type='Conv2d'), dict(type='Conv')):
        conv = build_conv_layer(cfg, 4, 8, kernel_size=1, stride=2, bias=False)
        assert type(conv) is StridedPointwiseConv2d and conv.bias is None
        assert type(build_conv_layer(cfg, 4, 8, 1, 2)) is StridedPointwiseConv2d
    assert type(build_conv_layer(None, 4, 8, kernel_size=1)) is nn.Conv2d
    assert type(build_conv_layer(None, 4, 8, kernel_size=3, stride=2)) is nn.Conv2d
    ws = build_conv_layer(dict(type='ConvWS'), 4, 8, kernel_size=1, stride=2)
    assert not isinstance(ws, StridedPointwiseConv2d)
    with pytest.raises(TypeError):
        build_conv_layer(None, 4, 8, kernel_size=1, stride=2, no_such_argument=1)


@pytest.mark.parametrize('cfg,expected', [
    (dict(type='ResNet', depth=50), ['layer2.0.downsample.0', 'layer3.0.downsample.0',
                                     'layer4.0.downsample.0']),
    (dict(type='ResNet', depth=50, style='caffe'), ['layer2.0.conv1', 'layer2.0.downsample.0',
                                                    'layer3.0.conv1', 'layer3.0.downsample.0',
                                                    'layer4.0.conv1', 'layer4.0.downsample.0']),
    (dict(type='ResNetV1d', depth=50), []),  # average-pool shortcut: stride-1 convs only
])
def test_resnet_builds_its_strided_shortcuts_with_it(cfg, expected):
    model = build_backbone(cfg)
    found = [n for n, m in model.named_modules() if isinstance(m, StridedPointwiseConv2d)]
    assert found == expected


def test_function_matches_f_conv2d_on_every_path():
    x = torch.randn(2, 6, 11, 13)
    w, b = torch.randn(4, 6, 1, 1), torch.randn(4)
    expected = F.conv2d(x, w, b, stride=(2, 3))
    torch.testing.assert_close(strided_pointwise_conv2d(x, w, b, (2, 3)), expected)
    torch.testing.assert_close(
        strided_pointwise_conv2d(x.to(memory_format=torch.channels_last), w, b, (2, 3)), expected)


def test_mmengine_init_by_layer_name_reaches_it():
    """``init_cfg=dict(type='Kaiming', layer='Conv2d')`` matches modules by class or base-class
    name: the shortcut conv must be initialised like every other conv."""
    model = build_backbone(dict(type='ResNet', depth=50, init_cfg=dict(
        type='Constant', layer='Conv2d', val=0.5)))
    model.init_weights()
    conv = model.layer2[0].downsample[0]
    assert isinstance(conv, StridedPointwiseConv2d)
    assert torch.all(conv.weight == 0.5)


def test_detectron2_conv_takes_the_subsampled_kernel_for_its_strided_1x1(conv2d_strides):
    from mmbackbones.integrations.detectron2.resnet import Conv2d as D2Conv2d
    from mmbackbones.integrations.detectron2.resnet import conv2d
    shortcut, conv3x3 = conv2d(8, 12, 1, stride=2, bias=False), conv2d(8, 12, 3, stride=2)
    assert isinstance(shortcut, (StridedPointwiseConv2d, D2Conv2d)) and type(conv3x3) is D2Conv2d
    x = torch.randn(2, 8, 9, 9)
    expected = F.conv2d(x, shortcut.weight, None, 2)
    conv2d_strides.clear()
    torch.testing.assert_close(shortcut(x), expected, rtol=1e-5, atol=1e-5)
    conv3x3(x)
    assert conv2d_strides == [1, (2, 2)]


def test_channels_last_max_pool_is_exact():
    pool, plain = ChannelsLastMaxPool2d(3, 2, 1), nn.MaxPool2d(3, 2, 1)
    x = torch.randn(2, 8, 15, 16)
    with torch.no_grad():
        out = pool(x)
    assert out.is_contiguous() and torch.equal(out, plain(x))
    assert torch.equal(pool(x), plain(x))  # with autograd: the plain kernel


def test_the_switch_off_builds_plain_layers(fast_paths_off):
    assert type(build_conv_layer(None, 4, 8, kernel_size=1, stride=2)) is nn.Conv2d
    model = build_backbone(dict(type='ResNet', depth=18))
    assert not [m for m in model.modules()
                if isinstance(m, (StridedPointwiseConv2d, ChannelsLastMaxPool2d))]


def test_apply_switches_a_built_model_both_ways():
    model = build_backbone(dict(type='ResNet', depth=18, out_indices=(3,))).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)[0]
        assert apply_cpu_fast_paths(model, enabled=False) == 4  # 3 shortcuts and the stem pool
        assert type(model.maxpool) is nn.MaxPool2d
        assert type(model.layer2[0].downsample[0]) is nn.Conv2d
        torch.testing.assert_close(model(x)[0], expected)
        assert apply_cpu_fast_paths(model) == 4
        assert type(model.maxpool) is ChannelsLastMaxPool2d
        torch.testing.assert_close(model(x)[0], expected)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match='enabled must be True or False'):
        apply_cpu_fast_paths(model, enabled='yes')


def test_torch_jit_script_compiles_the_plain_classes():
    model = nn.Sequential(StridedPointwiseConv2d(8, 12, 1, stride=2),
                          ChannelsLastMaxPool2d(3, 2, 1)).eval()
    weight = model[0].weight
    x = torch.randn(2, 8, 15, 16)
    with torch.no_grad():
        expected = model(x)
        scripted = torch.jit.script(model)
        torch.testing.assert_close(scripted(x), expected, rtol=1e-5, atol=1e-5)
        # torch.jit.script puts what __prepare_scriptable__ returns into the parent's children:
        # plain layers holding the same parameters, computing the same values
        assert model[0].weight is weight
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
