"""FLOPs (mmengine's fvcore-style ``FlopAnalyzer``) and memory of one forward pass.

FLOPs follow fvcore's convention, as mmengine and mmpretrain report them: one multiply-add counts
as one FLOP, and element-wise ops (activations, softmax, additions) are not counted. The one
addition here is a handle for ``scaled_dot_product_attention``, which mmengine does not know.
"""
import warnings
import weakref
from typing import Dict, Tuple


def _sdpa_flop_jit(inputs, outputs):
    """``scaled_dot_product_attention``: ``Q @ K^T`` plus ``attn @ V`` multiply-adds.

    mmengine's analyzer has no handle for this op (it postdates fvcore), so ViT attention through
    SDPA would be left out of the total. q: (..., L, E), k: (..., S, E), v: (..., S, Ev).
    """
    from mmengine.analysis.jit_handles import get_shape

    q, k, v = (get_shape(value) for value in inputs[:3])
    batch = 1
    for dim in q[:-2]:
        batch *= dim
    length, embed = q[-2], q[-1]
    source, value_dim = k[-2], v[-1]
    return batch * length * source * (embed + value_dim)


EXTRA_FLOP_HANDLES = {
    'aten::scaled_dot_product_attention': _sdpa_flop_jit,
}

# Element-wise ops are not counted by the fvcore convention; mmengine's analyzer ignores some
# of them (relu, ...) but reports these as "unsupported". Ignoring them explicitly keeps the
# "not counted" note for ops that really carry multiply-adds.
ELEMENTWISE_OPS = tuple(f'aten::{op}' for op in (
    'add', 'add_', 'sub', 'sub_', 'mul', 'mul_', 'div', 'div_', 'neg', 'abs', 'pow', 'sqrt',
    'rsqrt', 'exp', 'erf', 'sigmoid', 'sigmoid_', 'silu', 'silu_', 'gelu', 'gelu_', 'tanh',
    'hardswish', 'hardswish_', 'hardsigmoid', 'hardsigmoid_', 'hardtanh', 'hardtanh_', 'elu',
    'leaky_relu', 'leaky_relu_', 'mish', 'softmax', 'log_softmax', 'clone', 'fill_', 'zero_',
    'roll', 'pad', 'unflatten', 'repeat', 'expand_as', 'select', 'slice', 'unbind', 'split',
    'type_as', 'to', 'linspace', 'stack', 'max_pool2d', 'max_pool2d_with_indices',
    'max_pool1d', 'max_pool3d', 'addcmul', 'addcmul_', 'rsub', 'ne', 'lt', 'le', 'where',
    'masked_fill_', 'logical_and', 'logical_or', 'bitwise_or', 'cumsum', 'argmax', 'topk'))


def count_flops(model, inputs) -> Tuple[int, Dict[str, int]]:
    """``(total_flops, unsupported_ops)`` of ``model(*inputs)`` traced once.

    ``unsupported_ops`` maps op names the analyzer could not count to how often they ran, so the
    caller can say what the total leaves out.
    """
    import torch
    from mmengine.analysis import FlopAnalyzer

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs, )
    analyzer = FlopAnalyzer(model, tuple(inputs))
    analyzer.set_op_handle(**EXTRA_FLOP_HANDLES)
    analyzer.set_op_handle(**{op: None for op in ELEMENTWISE_OPS})
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # jit tracer warnings about python control flow
        total = int(analyzer.total())
        unsupported = dict(analyzer.unsupported_ops())
    return total, unsupported


class _LiveTensorMemory:
    """Tracks the bytes of tensor storages created under it and alive at the same time.

    A ``TorchDispatchMode`` sees every op's outputs; each new storage is counted until it is freed
    (a weakref finalizer). Storages that existed before (parameters, buffers, the input) are not
    counted. What this leaves out: the allocator's rounding and scratch buffers a kernel allocates
    and frees inside one op (e.g. im2col); so the figure is a lower bound of the real peak.
    """

    def __init__(self, existing):
        self.existing = set(existing)
        self.live = {}
        self.current = 0
        self.peak = 0

    def mode(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        tracker = self

        class _Mode(TorchDispatchMode):

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for item in tree_flatten(out)[0]:
                    if hasattr(item, 'untyped_storage'):
                        tracker._track(item)
                return out

        return _Mode()

    def _track(self, tensor) -> None:
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # e.g. sparse or meta tensors
            return
        key = storage.data_ptr()
        nbytes = storage.nbytes()
        if not nbytes or key in self.live or key in self.existing:
            return
        self.live[key] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key) -> None:
        self.current -= self.live.pop(key, 0)


def _storage_ptrs(tensors):
    return {t.untyped_storage().data_ptr() for t in tensors}


def forward_memory(model, inputs, grad: bool = False) -> Dict[str, int]:
    """Bytes of tensors alive at once during one forward of ``model(inputs)``.

    ``grad=False``: inference (``torch.no_grad``), the peak of live activations. ``grad=True``:
    autograd on (model kept in its current mode), so the tensors saved for backward stay alive;
    ``retained`` is what is still held when forward returns (outputs plus saved activations).
    On CUDA the allocator's own peak (``torch.cuda.max_memory_allocated``) is reported too.
    """
    import torch

    existing = _storage_ptrs(list(model.parameters()) + list(model.buffers()) + [inputs])
    tracker = _LiveTensorMemory(existing)
    cuda = inputs.is_cuda
    if cuda:
        torch.cuda.synchronize(inputs.device)
        torch.cuda.reset_peak_memory_stats(inputs.device)
        base = torch.cuda.memory_allocated(inputs.device)
    grad_ctx = torch.enable_grad() if grad else torch.no_grad()
    with grad_ctx, tracker.mode():
        outputs = model(inputs)
        retained = tracker.current
    result = {'peak': tracker.peak, 'retained': retained}
    if cuda:
        torch.cuda.synchronize(inputs.device)
        result['cuda_peak'] = torch.cuda.max_memory_allocated(inputs.device) - base
    del outputs
    return result


def param_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers())
