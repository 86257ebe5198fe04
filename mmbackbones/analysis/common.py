"""Shared helpers of the tools: build a backbone from a config file, make inputs, count params."""
import os
from typing import Optional, Sequence, Tuple

DEFAULT_INPUT_SIZE = 224

# ImageNet mean/std in 0..255, the mmpretrain data_preprocessor default.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class CLIError(Exception):
    """A user-facing error of a tool: printed as one line, exit code 2."""


class EnvironmentFailure(Exception):
    """Something outside the user's input failed (no network, a cache folder that cannot be
    written): printed as one line ``<prog>: failed: <message>``, exit code 1."""


def load_backbone_config(config: str, cfg_options: Optional[dict] = None):
    """``(cfg, backbone_cfg)`` of a config file or a model name (``resnet50``,
    ``timm.convnext_tiny``; see ``mmbackbones.model_configs``), overrides applied."""
    from ..builder import backbone_cfg_from_config
    from ..model_configs import load_model_config

    cfg = load_model_config(config, cfg_options)
    return cfg, backbone_cfg_from_config(cfg)


def build_from_config(config: str, cfg_options: Optional[dict] = None, seed: int = 0,
                      checkpoint: Optional[str] = None, checkpoint_strict: bool = True):
    """``(cfg, backbone_cfg, model)``, the model in eval mode.

    Weights: the constructor's random init after ``torch.manual_seed(seed)`` (the same config and
    seed give the same weights, so runs are reproducible), or ``checkpoint`` loaded through
    ``mmbackbones.checkpoint.load_checkpoint`` (any format it converts; a ``backbone.`` prefix is
    found). With ``checkpoint_strict`` (the CLI's default; ``--non-strict`` turns it off) the
    loader's no-half-load rule applies (a classifier head is named, not refused): a mismatch is
    one line naming the counts. ``init_weights()``
    is not called: a ``Pretrained`` init_cfg would download weights, and describing the
    architecture needs none.
    """
    cfg, backbone_cfg = load_backbone_config(config, cfg_options)
    import torch

    from ..builder import build_backbone

    torch.manual_seed(seed)
    model = build_backbone(backbone_cfg)
    if checkpoint is not None:
        load_cli_checkpoint(model, checkpoint, checkpoint_strict)
    model.eval()
    return cfg, backbone_cfg, model


def load_cli_checkpoint(model, checkpoint: str, strict: bool = True):
    """``--checkpoint``: load or raise a one-line :class:`CLIError` (exit code 2).

    ``strict`` (the default) applies the loader's no-half-load rule
    (:func:`mmbackbones.checkpoint.state.check_state_dict_fits`: classifier heads and the like
    are named, not refused); ``False`` (``--non-strict``) loads what matches."""
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    from ..checkpoint import CHECKPOINT_ERRORS, load_checkpoint

    try:
        return load_checkpoint(model, checkpoint, strict=None if strict else False,
                               logger='silent')
    except CHECKPOINT_ERRORS as error:
        fit = getattr(error, 'fit', None)
        if fit is None:
            raise CLIError(f'--checkpoint {checkpoint}: {error}') from None
        raise CLIError(f'--checkpoint {checkpoint} does not fit {fit.module_name}: '
                       f'{fit.summary.rstrip(".")}. Pass --non-strict to load the matching '
                       f'tensors anyway') from None


def weights_label(backbone_cfg, checkpoint: Optional[str] = None, seed: int = 0) -> str:
    """What the built model's weights are, in words (for the tools' output)."""
    if checkpoint:
        return f'weights {checkpoint}'
    get = backbone_cfg.get if hasattr(backbone_cfg, 'get') else (lambda key, default=None: None)
    for key in ('checkpoint_path', 'weights', 'pretrained'):
        if get(key):  # wrappers (timm/torchvision) load these at construction
            return f'weights from the config ({key}={get(key)!r})'
    return f'random weights, seed {seed}'


def default_input_size(backbone_cfg) -> Tuple[int, int]:
    """The backbone's own ``img_size`` when the config names one (ViT-like), else 224x224."""
    size = backbone_cfg.get('img_size') if hasattr(backbone_cfg, 'get') else None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return (size, size)
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(
            isinstance(s, int) and s > 0 for s in size):
        return (int(size[0]), int(size[1]))
    return (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)


def model_in_channels(model) -> int:
    channels = getattr(model, 'in_channels', None)
    return channels if isinstance(channels, int) and channels > 0 else 3


def make_input(model, input_size: Sequence[int], batch: int = 1, seed: int = 0):
    """A reproducible random ``(batch, in_channels, H, W)`` float tensor."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model_in_channels(model), int(input_size[0]), int(input_size[1]),
                       generator=generator)


def count_params(model) -> Tuple[int, int]:
    """``(total, frozen)`` parameter counts; shared parameters are counted once."""
    total = frozen = 0
    for param in model.parameters():  # parameters() already yields each tensor once
        total += param.numel()
        if not param.requires_grad:
            frozen += param.numel()
    return total, frozen


def output_names(model, outputs) -> Tuple[str, ...]:
    """The backbone's ``out_names``, or ``out0..outN`` for a module without the contract."""
    names = tuple(getattr(model, 'out_names', ()) or ())
    if len(names) != len(outputs):
        names = tuple(f'out{i}' for i in range(len(outputs)))
    return names


def as_tuple(outputs):
    """A forward result as a tuple of tensors (a lone tensor or a dict is accepted too)."""
    import torch

    if isinstance(outputs, torch.Tensor):
        return (outputs, )
    if isinstance(outputs, dict):
        return tuple(outputs.values())
    return tuple(outputs)


def check_output_path(path: str, suffixes: Sequence[str]) -> str:
    """Refuse, before anything is built, an output path that cannot be written: a missing or
    read-only folder, an existing folder or device, a suffix not in ``suffixes``."""
    from ..utils.fileio import output_problem

    problem = output_problem(path, suffixes)
    if problem:
        raise CLIError(problem)
    return path
