"""The fused-qkv head split: its one-copy backward equals autograd's reshape/permute/unbind."""
import torch
import torch.nn.functional as F

from mmbackbones.models.layers.attention import MultiheadSelfAttention, split_heads


def _plain_split(qkv, heads):
    b, n, c3 = qkv.shape
    return qkv.reshape(b, n, 3, heads, c3 // (3 * heads)).permute(2, 0, 3, 1, 4).unbind(0)


def test_split_heads_gradcheck_and_values():
    qkv = torch.randn(2, 5, 3 * 4 * 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: split_heads(t, 4), (qkv, ))
    for got, want in zip(split_heads(qkv, 4), _plain_split(qkv, 4)):
        assert torch.equal(got, want) and got.shape == (2, 4, 5, 3)


def test_split_heads_backward_through_sdpa_equals_autograd():
    torch.manual_seed(0)
    base = torch.randn(2, 7, 3 * 16)
    grads = []
    for split in (split_heads, _plain_split):
        qkv = base.clone().requires_grad_()
        out = F.scaled_dot_product_attention(*split(qkv, 2))
        out.pow(2).sum().backward()
        grads.append(qkv.grad)
    assert torch.equal(grads[0], grads[1])


def test_attention_module_trains_and_runs_without_grad():
    attn = MultiheadSelfAttention(16, 4)
    x = torch.randn(3, 6, 16, requires_grad=True)
    attn(x).sum().backward()
    assert x.grad.shape == x.shape and attn.qkv.weight.grad is not None
    with torch.no_grad():
        assert attn(torch.randn(0, 6, 16)).shape == (0, 6, 16)
