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


def test_biased_attention_equals_sdpa_with_the_bias_as_mask(monkeypatch):
    """With a learned bias under autograd on the CPU it computes the product itself (no SDPA
    fallback with its safe softmax); values and gradients are SDPA's with the bias as mask."""
    import mmbackbones.models.layers.attention as attention
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 8, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    table = torch.randn(2, 3, 10, 10, dtype=torch.float64, requires_grad=True)
    calls = []
    real_sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(attention.F, 'scaled_dot_product_attention',
                        lambda *a, **kw: calls.append(1) or real_sdpa(*a, **kw))
    results = []
    for fn in (lambda *t: attention.biased_attention(*t, scale=0.3),
               lambda q, k, v, b: real_sdpa(q, k, v, attn_mask=b, scale=0.3)):
        out = fn(q, k, v, table * 1.0)
        grads = torch.autograd.grad(out.pow(2).sum(), (q, k, v, table))
        results.append((out, *grads))
    assert calls == []  # the explicit product ran
    for got, want in zip(*results):
        torch.testing.assert_close(got, want)
    with torch.no_grad():  # without autograd: SDPA (its fused kernel)
        torch.testing.assert_close(attention.biased_attention(q, k, v, table, 0.3),
                                   results[0][0].detach())
    assert calls == [1]
