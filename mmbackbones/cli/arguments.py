"""Argument types and option groups shared by the subcommands (no torch, no mmengine)."""
import argparse
import os
from typing import Optional

from ..analysis.common import CLIError
from .errors import one_line

PROG = 'mmbackbones'


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message} (see `{self.prog} --help`)\n')




# ----- argument types ------------------------------------------------------------------------
def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}') from None
    if value < low:
        raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}')
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, 'a positive integer')


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, 'an integer >= 0')


def _image_side(text: str) -> int:
    """An image side for ``--input-size``: a positive int up to ``MAX_IMAGE_SIDE`` (8192; one
    float32 RGB image of 8192x8192 is 0.8 GB, the checks run before anything is allocated)."""
    from ..utils.validation import MAX_IMAGE_SIDE

    value = _positive_int(text)
    if value > MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(f'expected an image side of at most {MAX_IMAGE_SIDE} '
                                         f'pixels, got {text!r}')
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number >= 0, got {text!r}') from None
    if not 0 <= value < float('inf'):  # also refuses nan
        raise argparse.ArgumentTypeError(f'expected a finite number >= 0, got {text!r}')
    return value


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f'file not found: {text}')
    return text


def _cfg_options_action():
    """mmengine's ``DictAction`` (``a.b=1 'c=(1,2)'``), refusing an item without ``=``."""
    from mmengine.config import DictAction

    class CfgOptions(DictAction):

        def __call__(self, parser, namespace, values, option_string=None):
            for item in values:
                key = item.split('=', 1)[0]
                if '=' not in item or not key:
                    parser.error(f'argument {option_string}: expected KEY=VALUE items, got '
                                 f'{item!r}')
            for item in values:  # one at a time, so a refusal names its item
                try:
                    super().__call__(parser, namespace, [item], option_string)
                except Exception as err:  # mmengine asserts on unbalanced brackets
                    parser.error(f'argument {option_string}: cannot parse {item!r}: '
                                 f'{one_line(err) or type(err).__name__}')

    return CfgOptions


def _config_or_name(text: str) -> str:
    """A config file, or a model name resolved later (``mmbackbones.model_configs``)."""
    if not os.path.isfile(text) and (text.endswith('.py') or os.path.exists(text)):
        raise argparse.ArgumentTypeError(f'file not found: {text}')
    return text


def _add_config(parser, cfg_options: bool = True) -> None:
    parser.add_argument('config', type=_config_or_name,
                        help='config file (.py) with a `model.backbone`, `backbone` or `model` '
                        'dict, or a model name: a shipped config (resnet50, convnext-tiny; '
                        '`list --configs`) or timm.<name> / torchvision.<name>')
    if cfg_options:
        parser.add_argument('--cfg-options', nargs='+', action=_cfg_options_action(),
                            metavar='KEY=VALUE',
                            help='override config entries, e.g. model.backbone.depth=101 '
                            "'model.backbone.out_indices=(2,3)'")


def _add_input_size(parser, what: str = 'input') -> None:
    parser.add_argument('--input-size', nargs=2, type=_image_side, metavar=('H', 'W'),
                        help=f'{what} height and width (default: the backbone\'s img_size, else '
                        '224 224)')


def _add_weights(parser) -> None:
    parser.add_argument('--checkpoint', type=_existing_file, default=None,
                        help='weights to load (any format mmbackbones converts; once converted, '
                        'its tensors must match the backbone\'s, a classifier head (fc, head) '
                        'is ignored). Default: random init')
    parser.add_argument('--non-strict', action='store_true',
                        help='with --checkpoint: load the tensors that match and ignore missing '
                        'or extra keys')
    parser.add_argument('--seed', type=_non_negative_int, default=0,
                        help='torch seed of the random init (default 0)')


def _add_device(parser) -> None:
    parser.add_argument('--device', default=None,
                        help='torch device (default: cuda when available, else cpu)')


def _device(name: Optional[str]) -> str:
    import torch

    if name is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CLIError(f'--device: not a torch device: {name!r}') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise CLIError(f'--device {name}: CUDA is not available on this machine')
    return str(device)
