"""DCNv3, InternImage's deformable operator, in pure PyTorch (``F.grid_sample``).

:func:`dcnv3_sample` computes what InternImage's CUDA kernel and its pure-PyTorch reference
(``dcnv3_core_pytorch`` of the official ``ops_dcnv3``, also in ``detrex.layers.dcn_v3``) compute:
for every output pixel and every group ``g`` it samples the input (channels-last, ``group *
group_channels`` channels) bilinearly at the ``kernel_h * kernel_w`` points of a regular
(dilated, strided) window moved by learnt offsets, and sums the samples weighted by a mask:

``out[n, y, x, g] = sum_p mask[n, y, x, g, p] * in_g(base(y, x) + (k_p + offset[n, y, x, g, p])
* offset_scale)``

``base`` is the window centre in the zero-padded input, ``k_p`` the window point relative to it
(kernel points ordered column-major, x outer, as upstream), ``offset`` is ``(dx, dy)`` in pixels
and samples outside the input read zeros. The tests prove it equal to detrex's reference to
1e-5. Instead of padding the input it shifts the sampling points (zeros outside the input are
what ``grid_sample``'s ``padding_mode='zeros'`` reads), which gives the same numbers.

:class:`DCNv3` is the module around it with the official parameter names (``input_proj``,
``dw_conv.{0: depthwise conv, 1: norm, 2: act}``, ``offset``, ``mask``, ``output_proj``,
``center_feature_scale_proj_weight|bias``), on ``(N, H, W, C)`` maps.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class Permute(nn.Module):
    """``x.permute(*dims)`` as a module (channels-first <-> channels-last in a Sequential)."""

    def __init__(self, *dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f'dims={self.dims}'


TO_LAST, TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)


def format_norm(kind: str, channels: int, in_last: bool, out_last: bool,
                eps: float = 1e-6) -> nn.Sequential:
    """InternImage's norm with its layout changes, indexed as upstream's Sequential (so the
    state-dict keys are the official ones): ``'LN'`` works channels-last, ``'BN'``
    channels-first; permutes are added before/after where the input/output layout differs."""
    layers = []
    if kind == 'LN':
        if not in_last:
            layers.append(Permute(*TO_LAST))
        layers.append(nn.LayerNorm(channels, eps=eps))
        if not out_last:
            layers.append(Permute(*TO_FIRST))
    elif kind == 'BN':
        if in_last:
            layers.append(Permute(*TO_FIRST))
        layers.append(nn.BatchNorm2d(channels))
        if out_last:
            layers.append(Permute(*TO_LAST))
    else:
        raise ValueError(f"InternImage norm must be 'LN' or 'BN', got {kind!r}")
    return nn.Sequential(*layers)


ACTIVATIONS = {'GELU': nn.GELU, 'ReLU': nn.ReLU, 'SiLU': nn.SiLU}


def build_activation(kind: str) -> nn.Module:
    if kind not in ACTIVATIONS:
        raise ValueError(f'InternImage activation must be one of {sorted(ACTIVATIONS)}, got '
                         f'{kind!r}')
    return ACTIVATIONS[kind]()


def _window(kernel: int, dilation: int, device, dtype) -> torch.Tensor:
    """Window point positions relative to the window centre, in pixels."""
    first = -((dilation * (kernel - 1)) // 2)
    return first + dilation * torch.arange(kernel, device=device, dtype=dtype)


def dcnv3_sample(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, kernel_h: int,
                 kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
                 dilation_h: int, dilation_w: int, group: int, group_channels: int,
                 offset_scale: float) -> torch.Tensor:
    """The DCNv3 sampling (see the module docstring), upstream's argument order.

    Args:
        x: ``(N, H, W, group * group_channels)``.
        offset: ``(N, H_out, W_out, group * kernel_h * kernel_w * 2)``, ``(dx, dy)`` pairs.
        mask: ``(N, H_out, W_out, group * kernel_h * kernel_w)`` sampling weights.
    Returns:
        ``(N, H_out, W_out, group * group_channels)``.
    """
    n, h, w, c = x.shape
    _, h_out, w_out, _ = offset.shape
    points = kernel_h * kernel_w
    device, dtype = offset.device, offset.dtype
    # window centres in unpadded pixel coordinates (the padded input's centre minus the pad)
    cy = (dilation_h * (kernel_h - 1)) // 2 - pad_h + stride_h * torch.arange(
        h_out, device=device, dtype=dtype)
    cx = (dilation_w * (kernel_w - 1)) // 2 - pad_w + stride_w * torch.arange(
        w_out, device=device, dtype=dtype)
    # kernel points, x outer and y inner: point p = i * kernel_h + j
    kx = _window(kernel_w, dilation_w, device, dtype)[:, None].expand(kernel_w, kernel_h)
    ky = _window(kernel_h, dilation_h, device, dtype)[None, :].expand(kernel_w, kernel_h)
    # the regular window (small: H_out x W_out x P) and the offsets' scale in grid_sample's
    # align_corners=False coordinates (pixel i spans [i, i + 1) -> (-1, 1)): one multiply-add
    # over the offsets per axis (Python-number scales: ONNX traces keep the sizes dynamic)
    base_x = (2 * (cx.view(1, w_out, 1, 1) + offset_scale * kx.reshape(points)) + 1) / w - 1
    base_y = (2 * (cy.view(h_out, 1, 1, 1) + offset_scale * ky.reshape(points)) + 1) / h - 1
    off = offset.reshape(n, h_out, w_out, group, points, 2)
    grid = torch.stack((torch.add(base_x, off[..., 0], alpha=2 * offset_scale / w),
                        torch.add(base_y, off[..., 1], alpha=2 * offset_scale / h)), -1)
    grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(n * group, h_out * w_out, points, 2)
    value = x.reshape(n, h * w, group, group_channels).permute(0, 2, 3, 1).reshape(
        n * group, group_channels, h, w)
    sampled = F.grid_sample(value, grid.to(value.dtype), mode='bilinear', padding_mode='zeros',
                            align_corners=False)  # (N * G, Cg, H_out * W_out, P)
    weights = mask.reshape(n, h_out * w_out, group, points).permute(0, 2, 1, 3).reshape(
        n * group, 1, h_out * w_out, points)
    out = (sampled * weights.to(sampled.dtype)).sum(-1)  # (N * G, Cg, H_out * W_out)
    return out.reshape(n, group * group_channels, h_out, w_out).permute(0, 2, 3, 1).contiguous()


class DCNv3(nn.Module):
    """InternImage's DCNv3 block on ``(N, H, W, C)`` (official names and initialisation).

    ``input_proj`` projects the values; a depthwise conv (``dw_kernel_size``, default
    ``kernel_size``) + norm + activation of the input gives the features from which ``offset``
    and ``mask`` (softmax over each group's kernel points) are predicted; the sampled values go
    through ``output_proj``. With ``center_feature_scale`` a per-group sigmoid gate mixes the
    sampled values with the projected input first.
    """

    def __init__(self, channels: int = 64, kernel_size: int = 3,
                 dw_kernel_size: Optional[int] = None, stride: int = 1, pad: int = 1,
                 dilation: int = 1, group: int = 4, offset_scale: float = 1.0,
                 act_layer: str = 'GELU', norm_layer: str = 'LN',
                 center_feature_scale: bool = False):
        super().__init__()
        if channels % group:
            raise ValueError(f'DCNv3 channels ({channels}) must be divisible by group '
                             f'({group})')
        dw_kernel_size = kernel_size if dw_kernel_size is None else dw_kernel_size
        self.channels, self.kernel_size, self.dw_kernel_size = channels, kernel_size, \
            dw_kernel_size
        self.stride, self.pad, self.dilation = stride, pad, dilation
        self.group, self.group_channels = group, channels // group
        self.offset_scale = offset_scale
        self.center_feature_scale = center_feature_scale
        self.dw_conv = nn.Sequential(
            nn.Conv2d(channels, channels, dw_kernel_size, padding=(dw_kernel_size - 1) // 2,
                      groups=channels),
            format_norm(norm_layer, channels, in_last=False, out_last=True),
            build_activation(act_layer))
        points = group * kernel_size * kernel_size
        self.offset = nn.Linear(channels, points * 2)
        self.mask = nn.Linear(channels, points)
        self.input_proj = nn.Linear(channels, channels)
        self.output_proj = nn.Linear(channels, channels)
        if center_feature_scale:
            self.center_feature_scale_proj_weight = nn.Parameter(torch.zeros(group, channels))
            self.center_feature_scale_proj_bias = nn.Parameter(torch.zeros(group))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream's init: zero offsets and mask logits (a uniform window), Xavier
        projections with zero bias."""
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.input_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, _ = x.shape
        value = self.input_proj(x)
        feats = self.dw_conv(x.permute(0, 3, 1, 2))
        points = self.kernel_size * self.kernel_size
        mask = self.mask(feats).reshape(n, h, w, self.group, points).softmax(-1).reshape(
            n, h, w, self.group * points)
        out = dcnv3_sample(value, self.offset(feats), mask, self.kernel_size, self.kernel_size,
                           self.stride, self.stride, self.pad, self.pad, self.dilation,
                           self.dilation, self.group, self.group_channels, self.offset_scale)
        if self.center_feature_scale:
            gate = F.linear(feats, self.center_feature_scale_proj_weight,
                            self.center_feature_scale_proj_bias).sigmoid()
            # one gate per group, repeated over its channels (expand + reshape: the ONNX
            # exporter mistranslates repeat_interleave here)
            gate = gate[..., None].expand(n, h, w, self.group, self.group_channels).reshape(
                n, h, w, self.channels)
            out = out * (1 - gate) + value * gate
        return self.output_proj(out)


__all__ = ['DCNv3', 'dcnv3_sample', 'format_norm', 'build_activation', 'Permute']
