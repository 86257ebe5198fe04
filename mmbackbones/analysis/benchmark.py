"""``mmbackbones bench``: latency of a backbone, optionally against a timm/torchvision model.

Runs are paired: each iteration times every model once, in alternating order, so drifts of a
shared machine (other jobs, clock changes) hit all models alike. Reported: median/min/max latency
per batch and images/s from the median; the ratio is ``other median / our median`` (> 1: ours is
faster).
"""
import difflib
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

from ..utils.optional import require
from .common import CLIError, build_from_config, default_input_size, make_input

DTYPES = ('float32', 'bfloat16', 'float16')
_HEADS = ('fc', 'classifier', 'head', 'heads')


def _similar(name: str, names: Sequence[str], n: int = 5) -> str:
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    close += [m for m in names if name.lower() in m.lower() and m not in close][:n - len(close)]
    return f' (similar: {", ".join(close)})' if close else ''


def reference_model(spec: str, cfg_options: Optional[dict] = None):
    """The model named by ``--vs``: ``timm:<name>``, ``torchvision:<name>`` or a config file.

    timm models run ``forward_features`` (the trunk, no pooling or head); torchvision models have
    their classifier (``fc``/``classifier``/``head``/``heads``) replaced by ``Identity``, which
    leaves the global pooling in (negligible next to the trunk). Weights are random: no download.
    """
    from torch import nn

    library, sep, name = spec.partition(':')
    if sep and library == 'timm':
        timm = require('timm', '--vs timm:<model>')

        if not timm.is_model(name):
            hint = _similar(name, timm.list_models())
            raise CLIError(f'--vs: timm has no model {name!r}{hint}')
        model = timm.create_model(name, pretrained=False)

        class _Trunk(nn.Module):

            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner.forward_features(x)

        return f'timm:{name}', _Trunk(model).eval(), None
    if sep and library == 'torchvision':
        torchvision = require('torchvision', '--vs torchvision:<model>')

        available = torchvision.models.list_models(module=torchvision.models)
        if name not in available:
            hint = _similar(name, available)
            raise CLIError(f'--vs: torchvision has no classification model {name!r}{hint}')
        model = torchvision.models.get_model(name, weights=None)
        for attr in _HEADS:
            if isinstance(getattr(model, attr, None), nn.Module):
                setattr(model, attr, nn.Identity())
                break
        return f'torchvision:{name}', model.eval(), None
    if spec.endswith('.py'):
        _, backbone_cfg, model = build_from_config(spec, cfg_options=None)
        return spec, model, default_input_size(backbone_cfg)
    raise CLIError(f'--vs must be timm:<model>, torchvision:<model> or a config .py file; got '
                   f'{spec!r}')


def prepare(model, x, dtype: str, channels_last: bool, compile_model: bool, device: str):
    """Move/cast the model and its input; optionally ``torch.compile`` it."""
    import torch

    torch_dtype = getattr(torch, dtype)
    model = model.to(device=device, dtype=torch_dtype).eval()
    x = x.to(device=device, dtype=torch_dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if compile_model:
        model = torch.compile(model)
    return model, x


def _sync(device: str) -> None:
    import torch

    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_paired(runs: Sequence[Callable[[], object]], iters: int, warmup: int, device: str,
                progress: Optional[Callable[[int], None]] = None) -> List[List[float]]:
    """Seconds per call of each run, ``iters`` times, alternating which goes first."""
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            for run in runs:
                run()
            _sync(device)
            if progress:
                progress(1)
        times: List[List[float]] = [[] for _ in runs]
        for i in range(iters):
            order = range(len(runs)) if i % 2 == 0 else reversed(range(len(runs)))
            for j in order:
                _sync(device)
                start = time.perf_counter()
                runs[j]()
                _sync(device)
                times[j].append(time.perf_counter() - start)
            if progress:
                progress(1)
    return times


def summarize(name: str, seconds: Sequence[float], batch: int) -> Dict[str, float]:
    median = statistics.median(seconds)
    return dict(model=name, median_ms=median * 1e3, min_ms=min(seconds) * 1e3,
                max_ms=max(seconds) * 1e3, images_per_s=batch / median, iters=len(seconds))


def run_bench(config: str, batch: int = 1, input_size: Optional[Sequence[int]] = None,
              channels_last: bool = False, compile_model: bool = False, dtype: str = 'float32',
              iters: int = 20, warmup: int = 5, vs: Optional[str] = None,
              cfg_options: Optional[dict] = None, device: str = 'cpu',
              progress_factory=None) -> dict:
    """Benchmark a config (and ``vs``) and return the summary rows and the ratio."""
    import torch

    if dtype not in DTYPES:
        raise CLIError(f'--dtype must be one of {", ".join(DTYPES)}; got {dtype!r}')
    _, backbone_cfg, model = build_from_config(config, cfg_options)
    size = tuple(input_size) if input_size else default_input_size(backbone_cfg)
    x = make_input(model, size, batch=batch)
    models = [(config, model, x)]
    if vs:
        vs_name, other, _ = reference_model(vs)
        other_x = make_input(other, size, batch=batch)
        models.append((vs_name, other, other_x))
    runs, names = [], []
    for name, module, inputs in models:
        module, inputs = prepare(module, inputs, dtype, channels_last, compile_model, device)
        runs.append(lambda m=module, t=inputs: m(t))
        names.append(name)
    progress = progress_factory(warmup + iters) if progress_factory else None
    try:
        times = time_paired(runs, iters, warmup, device, progress=progress)
    finally:
        if progress is not None and hasattr(progress, 'close'):
            progress.close()
    rows = [summarize(n, t, batch) for n, t in zip(names, times)]
    result = dict(config=config, batch=batch, input_size=list(size), dtype=dtype,
                  channels_last=channels_last, compile=compile_model, device=device,
                  threads=torch.get_num_threads(), iters=iters, warmup=warmup, rows=rows)
    if vs:
        result['ratio'] = rows[1]['median_ms'] / rows[0]['median_ms']
    return result


def speed_sentence(ratio: float, other: str) -> str:
    """What ``ratio`` (``other median / our median``) says, in words that cannot be misread:
    ``> 1``: ours is faster, ``< 1``: ours is slower, within 0.5 %: the same speed."""
    if not ratio > 0:
        raise ValueError(f'ratio must be a positive number, got {ratio!r}')
    if abs(ratio - 1) < 0.005:
        return f'ours and {other} take the same time (within 0.5%)'
    if ratio > 1:
        return f'ours is faster: {other} takes {ratio:.3f}x our time'
    return f'ours is slower: it takes {1 / ratio:.3f}x the time of {other}'
