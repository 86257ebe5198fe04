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


def timed_rounds(models: dict, x, rounds: int, warmup: int, clock=None, before=None):
    """Call every model once per round on ``x``, rotating the order each round so drift and
    cache effects hit all of them alike. Returns ``{name: [seconds per kept round]}``; the first
    ``warmup`` rounds are dropped. Call under ``torch.inference_mode()`` for inference timing.

    ``clock``: a function returning seconds (default ``time.perf_counter``), or a dict
    ``{label: function}`` to read several clocks around the same calls; then the result is
    ``{label: {name: [seconds]}}``. ``before``: called (untimed) before each call, e.g.
    ``gc.collect``. A call's result is released after its clock has stopped."""
    import time
    clocks = clock if isinstance(clock, dict) else {None: clock or time.perf_counter}
    names = list(models)
    times = {label: {name: [] for name in names} for label in clocks}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if before is not None:
                before()
            start = {label: now() for label, now in clocks.items()}
            out = models[name](x)
            stop = {label: now() for label, now in clocks.items()}
            del out
            if r >= warmup:
                for label in clocks:
                    times[label][name].append(stop[label] - start[label])
    return times if isinstance(clock, dict) else times[None]


# --autocast choices: the dtype the forwards run in under torch.autocast (None: fp32)
AUTOCAST = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def add_device_arguments(parser) -> None:
    """``--device`` (cpu/cuda) and ``--autocast`` (none/bf16/fp16), the same in every bench."""
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'),
                        help='cuda: every call synchronised, timed on the wall clock')
    parser.add_argument('--autocast', choices=sorted(AUTOCAST), default='none',
                        help='run the forwards under torch.autocast with this dtype')


def check_device_arguments(parser, args) -> None:
    """Refuse ``--device cuda`` on a machine without CUDA (exit 2, one line)."""
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch.cuda.is_available() is False on this machine')


def synced(fn, device: torch.device, amp=None):
    """``fn`` under autocast (when ``amp`` is a dtype) that returns only once a GPU has finished
    its work, so a clock read after the call times the work, not its launch."""
    def call(x):
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = fn(x)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        return out
    return call


def per_round_ratios(times: dict, num: str, den: str) -> list:
    """``times[num][i] / times[den][i]`` for every round: each ratio compares runs made moments
    apart, so a load spike shared by both cancels out."""
    return [a / b for a, b in zip(times[num], times[den])]


def ratio_summary(ratios: list) -> dict:
    """Median of per-round ratios with its spread (quartiles, min, max): a median within the
    quartile range of 1.0 is "on par", not a win or a loss."""
    import statistics
    ordered = sorted(ratios)
    q1, _, q3 = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else ordered * 3
    return dict(median=round(statistics.median(ordered), 4), q1=round(q1, 4), q3=round(q3, 4),
                min=round(ordered[0], 4), max=round(ordered[-1], 4), rounds=len(ordered))


def last_tensor(out):
    """The last tensor of a tuple/list output (ours, mmpretrain), or the output itself."""
    return out[-1] if isinstance(out, (tuple, list)) else out


class TrainStep:
    """One training step of ``fn`` (forward of ``model``): forward, a scalar loss on the last
    output, backward, and dropping the gradients (``zero_grad(set_to_none=True)``), so every
    step starts alike. No optimizer: the step is what the backbone itself costs. ``autocast``:
    a dtype (``torch.bfloat16``) to run the forward under ``torch.autocast`` on ``x``'s device."""

    def __init__(self, model: nn.Module, fn=None, autocast=None):
        self.model = model
        self.fn = fn or model
        self.autocast = autocast

    def loss(self, x):
        with torch.autocast(x.device.type, dtype=self.autocast,
                            enabled=self.autocast is not None):
            out = last_tensor(self.fn(x))
        return out.float().pow(2).mean()

    def __call__(self, x):
        self.loss(x).backward()
        self.model.zero_grad(set_to_none=True)


def step_memory_mib(step: TrainStep, x) -> dict:
    """Memory of one training step, in MiB of tensors alive at once (parameters, buffers and
    ``x`` excluded): ``activations``, what the forward leaves alive for backward (saved
    activations and the output), and ``peak`` over forward and backward (adds gradients and
    temporaries). Tracked through a dispatch mode (``mmbackbones.analysis.complexity``), so
    these are the tensors' own bytes (a lower bound of what the allocator holds), and the same
    on a busy machine as on a quiet one."""
    from mmbackbones.analysis.complexity import _LiveTensorMemory, _storage_ptrs
    model = step.model
    tracker = _LiveTensorMemory(_storage_ptrs(list(model.parameters())
                                              + list(model.buffers()) + [x]))
    with tracker.mode():
        loss = step.loss(x)
        activations = tracker.current
        loss.backward()
        del loss
    model.zero_grad(set_to_none=True)
    return dict(activations=round(activations / 2**20, 1), peak=round(tracker.peak / 2**20, 1))


def write_report(report: dict, path: str) -> None:
    """Write a benchmark's JSON result to ``path`` (its folder created) and say where."""
    import json
    import os
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(report, f, indent=2)
    print(f'wrote {path}')
