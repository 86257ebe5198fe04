"""Pieces several benchmark scripts share (imported as a sibling module by each script)."""
import torch
from torch import nn


def randomize_(model: nn.Module, seed: int = 0) -> dict:
    """Fill weights and BN statistics with non-degenerate values (so a wrong weight copy between
    two models would show in their outputs); returns the state dict."""
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            if not value.is_floating_point():
                continue
            if key.endswith('running_var') or (value.dim() == 1 and key.endswith('weight')):
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            elif value.dim() == 1:
                value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
            else:
                value.copy_(torch.randn(value.shape, generator=gen)
                            * (2.0 / value[0].numel()) ** 0.5)
    model.load_state_dict(state)
    return state


class LastOutput(nn.Module):
    """The last output of a tuple (ours, mmpretrain) or of ``forward_features`` (timm), so models
    with different return conventions are timed doing the same work."""

    def __init__(self, inner: nn.Module, method: str = 'forward'):
        super().__init__()
        self.inner, self.method = inner, method

    def forward(self, x):
        out = getattr(self.inner, self.method)(x)
        return out[-1] if isinstance(out, (tuple, list)) else out


def timed_rounds(models: dict, x, rounds: int, warmup: int, clock=None):
    """Call every model once per round on ``x``, rotating the order each round so drift and
    cache effects hit all of them alike. Returns ``{name: [seconds per kept round]}``; the first
    ``warmup`` rounds are dropped. Call under ``torch.inference_mode()`` for inference timing."""
    import time
    clock = clock or time.perf_counter
    names = list(models)
    times = {name: [] for name in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            models[name](x)
            if r >= warmup:
                times[name].append(clock() - start)
    return times


def per_round_ratios(times: dict, num: str, den: str) -> list:
    """``times[num][i] / times[den][i]`` for every round: each ratio compares runs made moments
    apart, so a load spike shared by both cancels out."""
    return [a / b for a, b in zip(times[num], times[den])]
