"""DCNv3 in pure PyTorch (models/layers/dcnv3.py): its own properties. Equality with detrex's
pure-PyTorch reference (``dcnv3_core_pytorch``) is tests/detectron2/test_detrex_internimage.py."""
import pytest
import torch
import torch.nn.functional as F

from mmbackbones.models.layers.dcnv3 import DCNv3, dcnv3_sample


def _args(k=3, s=1, p=1, d=1, g=2, gc=3, scale=1.0):
    return dict(kernel_h=k, kernel_w=k, stride_h=s, stride_w=s, pad_h=p, pad_w=p, dilation_h=d,
                dilation_w=d, group=g, group_channels=gc, offset_scale=scale)


def _out_side(side, k, s, p, d):
    return (side + 2 * p - (d * (k - 1) + 1)) // s + 1


@pytest.mark.parametrize('k,s,p,d', [(3, 1, 1, 1), (3, 2, 1, 1), (5, 1, 2, 1), (3, 1, 2, 2),
                                     (3, 1, 0, 1)])
@pytest.mark.parametrize('size', [(7, 5), (8, 8)])
def test_zero_offsets_are_a_grouped_window_sum(k, s, p, d, size):
    """Zero offsets: each group sums its own channels over the regular (dilated, strided,
    zero-padded) window with the mask's weights, i.e. a grouped conv whose per-group kernel is
    the mask (here the same random mask at every pixel)."""
    g, gc = 2, 3
    h, w = size
    torch.manual_seed(0)
    x = torch.randn(2, h, w, g * gc)
    ho, wo = _out_side(h, k, s, p, d), _out_side(w, k, s, p, d)
    weights = torch.rand(g, k * k)
    mask = weights.reshape(1, 1, 1, -1).expand(2, ho, wo, g * k * k).contiguous()
    out = dcnv3_sample(x, torch.zeros(2, ho, wo, g * k * k * 2), mask, **_args(k, s, p, d, g, gc))
    # upstream orders kernel points x outer, y inner: point i * k + j is (x = i, y = j)
    kernel = weights.reshape(g, k, k).transpose(1, 2)  # (g, ky, kx)
    kernel = kernel.repeat_interleave(gc, 0)[:, None]  # one depthwise filter per channel
    expected = F.conv2d(x.permute(0, 3, 1, 2), kernel, stride=s, padding=p, dilation=d,
                        groups=g * gc).permute(0, 2, 3, 1)
    assert out.shape == (2, ho, wo, g * gc)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_integer_offsets_shift_and_offset_scale_multiplies():
    """A one-hot mask on the centre point with offset (dx, dy) reads the input at
    (y + dy * scale, x + dx * scale); outside the input it reads zeros."""
    torch.manual_seed(0)
    x = torch.randn(1, 6, 7, 4)
    offset = torch.zeros(1, 6, 7, 9, 2)
    offset[..., 4, 0], offset[..., 4, 1] = 1.0, -1.0  # centre point: dx = 1, dy = -1
    mask = torch.zeros(1, 6, 7, 9)
    mask[..., 4] = 1
    out = dcnv3_sample(x, offset.reshape(1, 6, 7, 18), mask, **_args(g=1, gc=4, scale=2.0))
    expected = torch.zeros_like(x)
    expected[:, 2:, :-2] = x[:, :-2, 2:]  # y - 2, x + 2
    torch.testing.assert_close(out, expected)


def test_half_pixel_offset_interpolates():
    x = torch.arange(12.).reshape(1, 3, 4, 1)
    offset = torch.zeros(1, 3, 4, 9, 2)
    offset[..., 4, 0] = 0.5
    mask = torch.zeros(1, 3, 4, 9)
    mask[..., 4] = 1
    out = dcnv3_sample(x, offset.reshape(1, 3, 4, 18), mask, **_args(g=1, gc=1))
    torch.testing.assert_close(out[0, :, :3, 0], (x[0, :, :3, 0] + x[0, :, 1:, 0]) / 2)
    torch.testing.assert_close(out[0, :, 3, 0], x[0, :, 3, 0] / 2)  # half outside: zeros


def test_gradients_reach_input_offsets_and_mask():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 6, 4, requires_grad=True)
    offset = (0.3 * torch.randn(1, 5, 6, 2 * 9 * 2)).requires_grad_()
    mask = torch.rand(1, 5, 6, 2 * 9, requires_grad=True)
    dcnv3_sample(x, offset, mask, **_args(g=2, gc=2)).square().sum().backward()
    for t in (x, offset, mask):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda a, b, c: dcnv3_sample(a, b, c, **_args(g=1, gc=2)),
        (torch.randn(1, 3, 4, 2, dtype=torch.double, requires_grad=True),
         (0.3 * torch.randn(1, 3, 4, 18, dtype=torch.double)).requires_grad_(),
         torch.rand(1, 3, 4, 9, dtype=torch.double, requires_grad=True)))


def test_module_init_is_a_uniform_window_and_odd_sizes_keep_their_shape():
    torch.manual_seed(0)
    dcn = DCNv3(channels=8, group=2)
    for x in (torch.randn(2, 7, 5, 8), torch.randn(1, 1, 1, 8), torch.randn(0, 4, 4, 8)):
        assert dcn(x).shape == x.shape
    x = torch.randn(1, 5, 6, 8)
    value = dcn.input_proj(x)
    # zero offset/mask init: softmax of zeros = 1/9 each, a 3x3 mean with zero padding
    mean = F.avg_pool2d(value.permute(0, 3, 1, 2), 3, 1, 1, count_include_pad=True)
    torch.testing.assert_close(dcn(x), dcn.output_proj(mean.permute(0, 2, 3, 1)), rtol=1e-5,
                               atol=1e-5)


def test_center_feature_scale_gate_and_refusal():
    dcn = DCNv3(channels=8, group=2, dw_kernel_size=5, center_feature_scale=True)
    assert dcn.center_feature_scale_proj_weight.shape == (2, 8)
    assert dcn.dw_conv[0].kernel_size == (5, 5)
    assert dcn(torch.randn(1, 4, 4, 8)).shape == (1, 4, 4, 8)
    with pytest.raises(ValueError, match='divisible by group'):
        DCNv3(channels=10, group=4)
    with pytest.raises(ValueError, match="'LN' or 'BN'"):
        DCNv3(channels=8, group=2, norm_layer='GN')
