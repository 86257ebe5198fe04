"""What every family's tests share: mmpretrain's modules and checkpoint layout, the one parity
body a family's test calls with the upstream module (:func:`assert_mmpretrain_parity`), timm
reference models, the family's shipped configs (:func:`family_configs`,
:func:`assert_config_builds_and_runs`) and the training-contract checks (``norm_eval``,
gradients, ``with_cp``, FrozenBN).
"""
import glob
import os
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Type, Union

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def mmpretrain_backbone(name: str):
    """mmpretrain's backbone class ``name`` (the test skips, saying why, without mmpretrain)."""
    pytest.importorskip('mmpretrain', reason='mmpretrain is needed for parity tests')
    from mmpretrain.models import backbones
    return getattr(backbones, name)


def save_as_backbone(weights, path) -> str:
    """Save a module's (or a state dict's) tensors as an mmpretrain classifier checkpoint does:
    ``{'state_dict': {'backbone.<key>': tensor}}``. Returns the path as a string."""
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, str(path))
    return str(path)


def assert_mmpretrain_parity(theirs: nn.Module, build_ours: Callable[[dict], nn.Module],
                             tmp_path, sizes: Iterable[Sequence[int]], *,
                             randomize: Optional[Callable[[nn.Module], object]] = None,
                             num_outputs: Optional[int] = None, key_order: bool = True,
                             batch: int = 2, rtol: float = 1e-5, atol: float = 1e-5) -> nn.Module:
    """The mmpretrain parity test of a family, given the upstream module ``theirs``.

    ``theirs`` is randomised (``randomize``, e.g. non-trivial norm statistics), saved as an
    mmpretrain classifier checkpoint and loaded into ``build_ours(init_cfg)`` through
    ``init_cfg=dict(type='Pretrained', ..., prefix='backbone')``. Ours must then have theirs'
    parameter names (in the same order unless ``key_order=False``), every tensor equal after
    ``init_weights()``, and, in eval mode on a random ``(batch, 3, H, W)`` input for each
    ``(H, W)`` of ``sizes``, as many outputs (``num_outputs`` when given) of the same shapes and
    values. Returns ours.
    """
    if randomize is not None:
        randomize(theirs)
    theirs.eval()
    ckpt = save_as_backbone(theirs, tmp_path / 'theirs.pth')
    ours = build_ours(dict(type='Pretrained', checkpoint=ckpt, prefix='backbone'))
    if key_order:
        assert list(ours.state_dict()) == list(theirs.state_dict())
    else:
        assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.init_weights()
    ours.eval()
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    for size in sizes:
        x = torch.randn(batch, 3, *size)
        with torch.no_grad():
            expected, got = theirs(x), ours(x)
        assert len(got) == len(expected), size
        if num_outputs is not None:
            assert len(got) == num_outputs
        for e, g in zip(expected, got):
            assert g.shape == e.shape, size
            torch.testing.assert_close(g, e, rtol=rtol, atol=atol)
    return ours


def timm_reference(name: str, randomize: Optional[Callable[[nn.Module], object]] = None):
    """timm's ``name`` (random weights, ``randomize``d, eval mode); skips, saying why, without
    timm."""
    timm = pytest.importorskip('timm', reason='timm is needed for timm parity tests')
    model = timm.create_model(name, pretrained=False)
    if randomize is not None:
        randomize(model)
    return model.eval()


def timm_converted(name: str, detect: Callable[[dict], bool], convert: Callable[[dict], dict],
                   randomize: Optional[Callable[[nn.Module], object]] = None):
    """``(timm model, its state dict converted to our layout)``; ``detect`` must recognise the
    timm layout first."""
    model = timm_reference(name, randomize)
    state = model.state_dict()
    assert detect(state), f'{detect.__name__} does not recognise timm {name}'
    return model, convert(state)


def randomize_batchnorm_(model: nn.Module, seed: int = 1) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters (in place), so that parity covers
    every norm layer (fresh ones would hide a norm that failed to load). Returns ``model``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.5, 0.5, generator=gen)
    return model


CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')


def family_configs(family: str) -> List[str]:
    """The shipped configs of a family: ``configs/<family>/*.py``, sorted."""
    return sorted(glob.glob(os.path.join(CONFIGS_DIR, family, '*.py')))


def assert_config_builds_and_runs(path: str, classes: Union[Type, Tuple[Type, ...]],
                                  size: int = 32) -> nn.Module:
    """A shipped config builds an instance of ``classes`` whose outputs on a ``size`` x ``size``
    input have the channels and strides its metadata declares. Returns the model."""
    from mmbackbones import build_backbone_from_config
    model = build_backbone_from_config(path).eval()
    assert isinstance(model, classes)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, size, size))
    assert tuple(o.shape[1] for o in outs) == model.out_channels
    assert tuple(size // o.shape[-1] for o in outs) == model.out_strides
    return model


# ----- the training contract ------------------------------------------------------------------
def assert_norm_eval_keeps_bn_statistics(model: nn.Module, size: int = 32) -> None:
    """``model`` (built with ``norm_eval=True``) keeps every BatchNorm in eval mode through
    ``.train()`` and a training forward leaves their running statistics alone."""
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(bn.training for bn in bns)
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.randn(2, 3, size, size))
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))


def assert_every_parameter_gets_gradients(model: nn.Module, size: int = 32) -> None:
    """Nothing is built that the outputs do not use (DDP needs no find_unused_parameters)."""
    model.train()
    outs = model(torch.randn(2, 3, size, size))
    sum(o.sum() for o in outs).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f'{name} is not used (DDP would need find_unused_parameters)'


def assert_with_cp_matches(plain: nn.Module, checkpointed: nn.Module, size: int = 32) -> None:
    """``checkpointed`` (``with_cp=True``) given ``plain``'s weights: the same outputs and the
    same gradients (input and parameters)."""
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, size, size)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = plain(xa), checkpointed(xb)
    for u, v in zip(a, b):
        torch.testing.assert_close(v, u)
    sum(o.sum() for o in a).backward()
    sum(o.sum() for o in b).backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    grads = 0
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5)
            grads += 1
    assert grads


def assert_frozen_bn_matches(ref: nn.Module, frozen: nn.Module, size: int = 64) -> None:
    """``frozen`` (FrozenBN in place of BatchNorm) given ``ref``'s weights computes, in training
    mode, what ``ref`` computes in eval mode."""
    assert not any(isinstance(m, _BatchNorm) for m in frozen.modules())
    frozen.load_state_dict(ref.state_dict(), strict=False)
    x = torch.randn(1, 3, size, size)
    ref.eval()
    for a, b in zip(ref(x), frozen.train()(x)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def assert_frozen_stages(model: nn.Module, frozen_stages: int) -> None:
    """After ``.train()``, the groups ``0..frozen_stages`` of ``model.stem_and_stages()`` have no
    gradients and stay in eval mode; the others train."""
    model.train()
    assert model.training
    for index, group in enumerate(model.stem_and_stages()):
        frozen = index <= frozen_stages
        for p in group.parameters():
            assert p.requires_grad is not frozen
        for m in group.modules():
            if m is not group:  # the group itself may be a throwaway ModuleList
                assert m.training is not frozen


def assert_fuse_keeps_outputs(model: nn.Module, size: int = 32) -> None:
    """``model.fuse()`` folds every BatchNorm and keeps the outputs (``model`` in eval mode)."""
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        before = model.eval()(x)
        model.fuse()
        after = model(x)
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _nudge_(key: str, value: torch.Tensor, gen: torch.Generator) -> None:
    value.add_(torch.randn(value.shape, generator=gen) * 0.02)


def perturb_(module: nn.Module, seed: int = 0,
             other: Callable[[str, torch.Tensor, torch.Generator], object] = _nudge_) -> None:
    """Move every floating tensor of ``module`` off its init (in place, seeded): running
    variances drawn from [0.75, 1.25), every other tensor changed by ``other(key, tensor,
    generator)`` (by default nudged by N(0, 0.02))."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if not value.is_floating_point():
                continue
            if key.endswith('running_var'):
                value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.75)
            else:
                other(key, value, gen)


def assert_outputs_close(expected, got, rtol: float = 1e-5) -> None:
    """As many outputs, each of the same shape and equal within ``rtol`` (relative to the
    largest magnitude of the expected tensor)."""
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=rtol, atol=rtol * e.abs().max().item())
