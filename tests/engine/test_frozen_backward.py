"""Frozen stages cost nothing in backward: no autograd graph, no saved activations, no grads.

With ``frozen_stages=k`` the stem and stages ``1..k`` run without recording anything for
autograd (their inputs and parameters do not require grad), so backward stops at stage ``k + 1``
and no activation of the frozen stages is kept alive. Checked by attributing every tensor that
autograd saves (``saved_tensors_hooks``) to the stage that was running, and by walking the graph
from the loss to the parameters it reaches.
"""
import pytest
import torch

from mmbackbones import build_backbone

CASES = {
    'resnet18-k1': (dict(type='ResNet', depth=18, frozen_stages=1, norm_eval=True), 64),
    'resnet18-k3-cp': (dict(type='ResNet', depth=18, frozen_stages=3, norm_eval=True,
                            with_cp=True), 64),
    'resnet18-k0': (dict(type='ResNet', depth=18, frozen_stages=0), 64),
    'vit-k1': (dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=8,
                    frozen_stages=1, out_type='featmap', out_indices=(2, 11)), 32),
    'convnext-k2': (dict(type='ConvNeXt', arch='atto', frozen_stages=2, drop_path_rate=0.),
                    32),
    'swin-k1': (dict(type='SwinTransformer', arch='tiny', frozen_stages=1, window_size=2,
                     drop_path_rate=0.), 32),
}


def _leaves(module):
    return [m for m in module.modules() if not list(m.children())]


def _saved_bytes_per_stage(model, x):
    """Run a forward with autograd on; returns (outputs, {stage index: bytes autograd saved
    while a leaf module of that stage was running}, {stage index: outputs requiring grad})."""
    stages = model.stem_and_stages()
    current = [None]
    saved, grad_outputs = {}, {}
    handles = []
    for i, stage in enumerate(stages):
        if stage is None:
            continue
        for leaf in _leaves(stage):
            def pre(module, args, i=i):
                current[0] = i

            def post(module, args, out, i=i):
                outs = out if isinstance(out, (tuple, list)) else (out,)
                grad_outputs[i] = grad_outputs.get(i, 0) + sum(
                    isinstance(o, torch.Tensor) and o.requires_grad for o in outs)
                current[0] = None

            handles += [leaf.register_forward_pre_hook(pre), leaf.register_forward_hook(post)]

    def pack(tensor):
        if current[0] is not None:
            saved[current[0]] = saved.get(current[0], 0) + tensor.numel() * tensor.element_size()
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            outs = model(x)
    finally:
        for h in handles:
            h.remove()
    return outs, saved, grad_outputs


def _reached_params(loss):
    """Parameters the autograd graph of ``loss`` accumulates gradients into."""
    seen, reached, stack = set(), set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, 'variable'):
            reached.add(id(node.variable))
        stack.extend(fn for fn, _ in node.next_functions)
    return reached


@pytest.mark.parametrize('case', sorted(CASES))
def test_frozen_stages_keep_no_graph_and_no_activations(case):
    cfg, side = CASES[case]
    torch.manual_seed(0)
    model = build_backbone(cfg).train()
    k = model.frozen_stages
    stages = model.stem_and_stages()
    frozen = {id(p) for s in stages[:k + 1] if s is not None for p in s.parameters()}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert frozen and trainable and not frozen & trainable

    outs, saved, grad_outputs = _saved_bytes_per_stage(model, torch.randn(2, 3, side, side))
    for i in range(k + 1):
        assert saved.get(i, 0) == 0, f'{case}: frozen stage {i} kept {saved[i]} bytes saved'
        assert grad_outputs.get(i, 0) == 0, f'{case}: frozen stage {i} produced outputs in the graph'
    assert saved.get(k + 1, 0) > 0, f'{case}: the first trainable stage saved nothing'

    loss = sum(o.float().pow(2).mean() for o in outs)
    reached = _reached_params(loss)
    assert not reached & frozen, f'{case}: the graph reaches frozen parameters'
    assert reached == trainable, f'{case}: some trainable parameter is not in the graph'
    loss.backward()
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.grad is None for p in model.parameters() if id(p) in frozen)
    missing = [names[id(p)] for p in model.parameters() if id(p) in trainable and p.grad is None]
    assert not missing, f'{case}: no gradient for {missing[:3]}'


def test_frozen_stages_save_less_than_unfrozen():
    """The activations kept for backward shrink as stages are frozen (same model, same input)."""
    x = torch.randn(2, 3, 64, 64)
    totals = []
    for k in (-1, 1, 3):
        torch.manual_seed(0)
        model = build_backbone(dict(type='ResNet', depth=18, frozen_stages=k, norm_eval=True))
        saved = [0]

        def pack(tensor):
            saved[0] += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.train()(x)
        totals.append(saved[0])
    assert totals[0] > totals[1] > totals[2] > 0, totals
