"""Optional dependencies (timm, torchvision, onnx, matplotlib, Pillow): import them when a
feature needs them, and say what to install when they are missing."""
import importlib

# module -> (pip name, mmbackbones extra that installs it)
OPTIONAL = {
    'timm': ('timm', 'timm'),
    'torchvision': ('torchvision', 'torchvision'),
    'onnx': ('onnx', 'onnx'),
    'onnxruntime': ('onnxruntime', 'onnx'),
    'matplotlib': ('matplotlib', 'viz'),
    'PIL': ('Pillow', 'viz'),
}


class MissingDependencyError(ModuleNotFoundError):
    """An optional dependency is not installed; the message says what to install."""


def install_hint(module: str) -> str:
    """``pip install 'mmbackbones[timm]'`` (or the package itself) for ``module``."""
    top = module.split('.')[0]
    pip_name, extra = OPTIONAL.get(top, (top, None))
    if extra is None:
        return f'pip install {pip_name}'
    return f"pip install 'mmbackbones[{extra}]' (or pip install {pip_name})"


def require(module: str, feature: str):
    """Import and return ``module``; if it is not installed raise
    :class:`MissingDependencyError` naming ``feature`` and the install command."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = module.split('.')[0]
        if error.name not in (top, module):
            raise  # the package is there but one of its own imports is broken
        raise MissingDependencyError(f'{feature} needs {OPTIONAL.get(top, (top,))[0]}, which is '
                                     f'not installed: {install_hint(module)}',
                                     name=top) from None
