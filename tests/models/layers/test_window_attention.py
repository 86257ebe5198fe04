"""Shifted-window attention: the one-gather shift (eager) equals torch.roll + partition (the
traced/compiled path), forward and backward, padded maps and empty batches included."""
import pytest
import torch

from mmbackbones.models.layers.window_attention import (ShiftWindowMSA, reorder_tokens,
                                                        shifted_window_order, window_partition,
                                                        window_reverse)


@pytest.mark.parametrize('h,w,ws,shift', [(14, 21, 7, 3), (8, 8, 4, 2), (7, 7, 7, 3)])
def test_shifted_window_order_is_roll_then_partition(h, w, ws, shift):
    x = torch.randn(2, h, w, 5)
    order, inverse = shifted_window_order(h, w, ws, shift)
    gathered = x.reshape(2, h * w, 5)[:, order].reshape(-1, ws * ws, 5)
    assert torch.equal(gathered, window_partition(torch.roll(x, (-shift, -shift), (1, 2)), ws))
    assert torch.equal(order[inverse], torch.arange(h * w))
    back = gathered.reshape(2, h * w, 5)[:, inverse].reshape(2, h, w, 5)
    assert torch.equal(back, x)
    assert torch.equal(window_reverse(gathered, ws, h, w),
                       torch.roll(x, (-shift, -shift), (1, 2)))


def test_reorder_tokens_gradient_is_the_inverse_gather():
    order, inverse = shifted_window_order(6, 6, 3, 1)
    x = torch.randn(2, 36, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: reorder_tokens(t, order, inverse), (x, ))
    y = reorder_tokens(x, order, inverse)
    g = torch.randn_like(y)
    y.backward(g)
    assert torch.equal(x.grad[:, order], g)


def _roll_reference(msa: ShiftWindowMSA, x: torch.Tensor) -> torch.Tensor:
    """What ShiftWindowMSA computed before the gather: pad, roll, partition, attend, undo."""
    b, h, w, c = x.shape
    ws, s = msa.window_size, msa.shift_size
    pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
    x = torch.nn.functional.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    hp, wp = x.shape[1:3]
    x = torch.roll(x, (-s, -s), (1, 2))
    out = msa.w_msa(window_partition(x, ws), mask=msa._mask(hp, wp, s, x.device))
    out = torch.roll(window_reverse(out, ws, hp, wp), (s, s), (1, 2))
    return out[:, :h, :w, :]


@pytest.mark.parametrize('size', [(14, 14), (13, 19), (9, 30)])
def test_shift_window_msa_matches_roll_forward_and_backward(size):
    torch.manual_seed(0)
    msa = ShiftWindowMSA(16, 2, window_size=7, shift_size=3, pad_small_map=True)
    x = torch.randn(2, *size, 16, requires_grad=True)
    out = msa(x)
    g = torch.randn_like(out)
    out.backward(g)
    grads = [x.grad.clone()] + [p.grad.clone() for p in msa.parameters()]
    msa.zero_grad()
    x2 = x.detach().clone().requires_grad_()
    ref = _roll_reference(msa, x2)
    ref.backward(g)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    for got, want in zip(grads, [x2.grad] + [p.grad for p in msa.parameters()]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_shift_window_msa_empty_batch_and_inference():
    msa = ShiftWindowMSA(8, 2, window_size=4, shift_size=2, pad_small_map=True).eval()
    assert msa(torch.randn(0, 8, 12, 8)).shape == (0, 8, 12, 8)
    x = torch.randn(1, 8, 12, 8)
    with torch.no_grad():
        torch.testing.assert_close(msa(x), _roll_reference(msa, x), rtol=0, atol=1e-6)
