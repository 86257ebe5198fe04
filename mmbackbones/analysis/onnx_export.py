"""``mmbackbones export``: ONNX export of a backbone with its outputs named by ``out_names``."""
import warnings
from typing import List, Optional, Sequence, Tuple

from .common import (CLIError, as_tuple, build_from_config, default_input_size, make_input,
                     output_names)

DEFAULT_OPSET = 17


def export_onnx(model, x, path: str, dynamic: bool = False, opset: int = DEFAULT_OPSET) -> dict:
    """Export ``model`` traced on ``x`` to ``path``.

    Input ``input``; outputs named by the backbone's ``out_names``. ``dynamic=True`` leaves batch,
    height and width free (axes named batch/height/width, ``<name>_height`` per output). Uses the
    TorchScript-based exporter (``dynamo=False``), which needs no onnxscript.
    """
    import torch

    with torch.no_grad():
        outputs = as_tuple(model(x))
    names = list(output_names(model, outputs))
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
        for name, out in zip(names, outputs):
            axes = {0: 'batch'}
            if out.dim() == 4:
                axes.update({2: f'{name}_height', 3: f'{name}_width'})
            dynamic_axes[name] = axes
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer and exporter deprecation warnings
        torch.onnx.export(model, (x, ), path, input_names=['input'], output_names=names,
                          dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False,
                          do_constant_folding=True)
    return dict(path=path, input_shape=list(x.shape), outputs=names, opset=opset,
                dynamic=dynamic)


def second_input_size(size: Sequence[int], model=None) -> Tuple[int, int]:
    """Another height and width for the ``--dynamic`` check: both sides change, by amounts that
    are not multiples of common strides/windows (so padding paths run), then are rounded up
    to the model's ``size_divisibility`` when it has one."""
    h, w = int(size[0]), int(size[1])
    h2, w2 = h + max(h // 2, 1) + 3, w + max(w // 4, 1) + 5
    div = getattr(model, 'size_divisibility', 0) or 0
    if div > 1:
        h2, w2 = -(-h2 // div) * div, -(-w2 // div) * div
    return h2, w2


def verify_onnx(model, path: str, x) -> List[dict]:
    """Run ``path`` in onnxruntime on ``x`` and compare each output with PyTorch's. An
    onnxruntime failure is a row with ``error`` and an infinite difference (the file does not
    work at this input), never an exception."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    onnx_names = [o.name for o in session.get_outputs()]
    try:
        results = session.run(None, {session.get_inputs()[0].name: x.cpu().numpy()})
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
        return [dict(name=name, shape=None, max_abs_diff=float('inf'),
                     error=f'onnxruntime failed: {str(err).splitlines()[0][:300]}')
                for name in onnx_names]
    with torch.no_grad():
        expected = as_tuple(model(x))
    rows = []
    for name, got, want in zip(onnx_names, results, expected):
        want = want.cpu().numpy()
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else float('inf')
        rows.append(dict(name=name, shape=list(got.shape), max_abs_diff=diff))
    return rows


def export(config: str, out_path: str, input_size: Optional[Sequence[int]] = None,
           dynamic: bool = False, batch: int = 1, opset: int = DEFAULT_OPSET,
           verify: bool = True, cfg_options: Optional[dict] = None, seed: int = 0,
           checkpoint: Optional[str] = None, checkpoint_strict: bool = True) -> dict:
    """Build a config's backbone, export it to ONNX and (by default) check it in onnxruntime.

    With ``dynamic`` the check also runs a second input through the file, with another batch,
    height and width (:func:`second_input_size`), so a graph that baked in the traced size fails
    the check. A model that itself refuses other sizes cannot be exported with ``--dynamic``
    (``CLIError`` saying so).
    """
    if opset < 7:
        raise CLIError(f'--opset must be >= 7; got {opset}')
    _, backbone_cfg, model = build_from_config(config, cfg_options, seed, checkpoint,
                                               checkpoint_strict)
    size = tuple(input_size) if input_size else default_input_size(backbone_cfg)
    x = make_input(model, size, batch=batch)
    from ..utils.fileio import atomic_output

    # written under a temporary name, checked, then renamed: out_path is never half-written
    with atomic_output(out_path) as tmp:
        result = _export_and_verify(model, x, tmp, size, batch, dynamic, opset, verify)
    result['path'] = out_path
    return result


def _export_and_verify(model, x, path, size, batch, dynamic, opset, verify) -> dict:
    result = export_onnx(model, x, path, dynamic=dynamic, opset=opset)
    if verify:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            result['verify'] = 'skipped: onnxruntime is not installed'
            return result
        checks = [dict(input_shape=list(x.shape), outputs=verify_onnx(model, path, x))]
        if dynamic:
            x2 = make_input(model, second_input_size(size, model), batch=batch + 1, seed=1)
            _check_model_accepts(model, x2)
            checks.append(dict(input_shape=list(x2.shape),
                               outputs=verify_onnx(model, path, x2)))
        result['verify'] = checks
        result['max_abs_diff'] = max(o['max_abs_diff'] for c in checks for o in c['outputs'])
    return result


def _check_model_accepts(model, x) -> None:
    """``--dynamic`` promises other heights/widths: refuse when PyTorch itself refuses one."""
    import torch
    try:
        with torch.no_grad():
            model(x)
    except Exception as err:  # noqa: BLE001 - any refusal means the same here
        raise CLIError(f'--dynamic: the model does not run at another input size '
                       f'{"x".join(str(s) for s in x.shape)} ({type(err).__name__}: '
                       f'{str(err).splitlines()[0][:200]}); export without --dynamic') from None
