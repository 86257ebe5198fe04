"""The ``mmbackbones`` command line: list, info, bench, show, print-config, export, convert, zoo.

Each subcommand imports what it needs when it runs, so ``mmbackbones --help`` stays fast. A user
error (missing file, bad option, bad config) is one line on stderr and exit code 2, never a
traceback; ``--debug`` (or ``MMBACKBONES_DEBUG=1``) shows the traceback instead.

Examples::

    mmbackbones list resnet
    mmbackbones info configs/resnet/resnet50.py --input-size 224 224 --neck mmdet
    mmbackbones bench configs/resnet/resnet50.py --batch 8 --vs timm:resnet50
    mmbackbones show configs/resnet/resnet50.py demo/demo.png -o work_dirs/resnet50.png
    mmbackbones print-config configs/resnet/resnet50.py --cfg-options model.backbone.depth=101
    mmbackbones export configs/resnet/resnet50.py -o resnet50.onnx --dynamic
    mmbackbones convert resnet50_timm.pth resnet50.safetensors
    mmbackbones zoo 'resnet50*'
"""
import argparse
import contextlib
import json
import os
import sys
from typing import List, Optional

from .analysis.common import CLIError
from .cli_errors import USER_ERRORS, one_line, run_command  # noqa: F401  (the one error path)

PROG = 'mmbackbones'


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message} (see `{self.prog} --help`)\n')




# ----- argument types ------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text!r}') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text!r}')
    return value


def _image_side(text: str) -> int:
    """An image side for ``--input-size``: a positive int up to ``MAX_IMAGE_SIDE`` (8192; one
    float32 RGB image of 8192x8192 is 0.8 GB, the checks run before anything is allocated)."""
    from .utils.validation import MAX_IMAGE_SIDE

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


# ----- output helpers ------------------------------------------------------------------------
def _console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal and 'COLUMNS' not in os.environ:
        console = Console(stderr=stderr, width=120)
    return console


def _human(value: float, unit: str = '', base: float = 1000.0) -> str:
    """``4.11 G``, ``10.72 MiB`` (``base=1024``), ``120``."""
    prefixes = ['', 'K', 'M', 'G', 'T'] if base == 1000.0 else ['', 'Ki', 'Mi', 'Gi', 'Ti']
    value = float(value)
    for prefix in prefixes[:-1]:
        if abs(value) < base:
            break
        value /= base
    else:
        prefix = prefixes[-1]
    text = f'{value:.2f} {prefix}{unit}' if prefix else f'{value:.0f} {unit}'
    return text.rstrip()


def _mib(n: int) -> str:
    return _human(n, 'B', 1024.0)


def _count(n: int) -> str:
    return f'{_human(n)} ({n:,})' if n >= 1000 else str(n)


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


# ----- list ----------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from rich.table import Table

    from .analysis import listing

    data = {'registered': listing.registered_types(args.pattern)}
    if args.configs:
        data['configs'] = listing.config_names(args.pattern)
    if args.pretrained:
        data['pretrained'] = listing.pretrained(args.pattern)
    if args.timm:
        data['timm'] = listing.timm_models(args.pattern)
    if args.torchvision:
        data['torchvision'] = listing.torchvision_models(args.pattern)
    if args.json:
        _print_json(data)
        return 0
    console = _console()
    pattern = f' matching {args.pattern!r}' if args.pattern else ''
    table = Table(title=f'Registered backbone types{pattern}: {len(data["registered"])}')
    table.add_column('type', style='bold')
    table.add_column('module')
    for row in data['registered']:
        table.add_row(row['name'], row['module'])
    if data['registered']:
        console.print(table)
    else:
        console.print(f'no registered backbone type{pattern}')
    if 'configs' in data:
        listing.print_configs(console, data['configs'], pattern)
    if 'pretrained' in data:
        listing.print_pretrained(console, data['pretrained'], pattern)
    for library, example in (('timm', 'TIMMBackbone'), ('torchvision', 'TorchvisionBackbone')):
        if library not in data:
            continue
        names = data[library]
        console.print(f'\n[bold]{library} models{pattern}: {len(names)}[/bold] '
                      f'(use with type={example!r}, model_name=...)')
        if names:
            from rich.columns import Columns

            console.print(Columns(names, equal=True, expand=False))
    return 0


# ----- info ----------------------------------------------------------------------------------
def cmd_info(args) -> int:
    from rich.table import Table

    from .analysis.info import backbone_info, format_neck_snippet

    device = _device(args.device)
    console = _console(stderr=True)
    with console.status('building the backbone and running one forward pass ...') \
            if console.is_terminal and not args.json else contextlib.nullcontext():
        info = backbone_info(args.config, args.input_size, args.cfg_options, device=device,
                             flops=not args.no_flops, memory=not args.no_memory, neck=args.neck,
                             seed=args.seed, checkpoint=args.checkpoint,
                             checkpoint_strict=not args.non_strict)
    if args.json:
        _print_json(info)
        return 0
    console = _console()
    shape = 'x'.join(str(s) for s in info['input_shape'])
    console.print(f'[bold]{info["type"]}[/bold] from {args.config}, one forward of a '
                  f'{shape} input ({info["weights"]})', highlight=False, soft_wrap=True)
    table = Table(title='Outputs')
    for column, justify in (('#', 'right'), ('name', 'left'), ('channels', 'right'),
                            ('stride', 'right'), ('output shape', 'left')):
        table.add_column(column, justify=justify)
    for i, row in enumerate(info['outputs']):
        table.add_row(str(i), row['name'], str(row['channels']), str(row['stride']),
                      ' x '.join(str(s) for s in row['shape']))
    console.print(table)
    summary = Table(show_header=False, title='Summary')
    summary.add_column('what', style='bold')
    summary.add_column('value')
    summary.add_row('params', _count(info['params']))
    summary.add_row('frozen params', _count(info['frozen_params']))
    summary.add_row('trainable params', _count(info['trainable_params']))
    summary.add_row('weights + buffers', _mib(info['param_bytes']))
    if 'flops' in info:
        note = ''
        if info['flops_unsupported_ops']:
            skipped = ', '.join(f'{k} x{v}'
                                for k, v in sorted(info['flops_unsupported_ops'].items()))
            note = f' [dim](not counted: {skipped})[/dim]'
        summary.add_row('FLOPs (1 multiply-add = 1)', _human(info['flops']) + note)
    if 'memory_inference' in info:
        mem = info['memory_inference']
        cuda = f'; CUDA allocator peak {_mib(mem["cuda_peak"])}' if 'cuda_peak' in mem else ''
        summary.add_row('forward memory, inference',
                        f'{_mib(mem["peak"])} peak of live activations{cuda}')
        mem = info['memory_autograd']
        cuda = f'; CUDA allocator peak {_mib(mem["cuda_peak"])}' if 'cuda_peak' in mem else ''
        summary.add_row('forward memory, with autograd',
                        f'{_mib(mem["peak"])} peak, {_mib(mem["retained"])} still held after '
                        f'forward (outputs + saved for backward){cuda}')
    console.print(summary)
    for problem in info['mismatches']:
        console.print(f'[bold red]metadata mismatch[/bold red] {problem}')
    if args.neck:
        console.print(f'\n[bold]{args.neck}[/bold]: in_channels='
                      f'{list(next(iter(info["neck"].values()))["in_channels"])}')
        console.print(format_neck_snippet(info['neck']), markup=False, highlight=False)
    return 1 if info['mismatches'] else 0


# ----- bench ---------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    from rich.table import Table

    from .analysis.benchmark import run_bench

    device = _device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    progress_factory = None
    err = _console(stderr=True)
    if err.is_terminal and not args.json:
        progress_factory = _rich_progress(err, 'benchmarking')
    result = run_bench(args.config, batch=args.batch, input_size=args.input_size,
                       channels_last=args.channels_last, compile_model=args.compile,
                       dtype=args.dtype, iters=args.iters, warmup=args.warmup, vs=args.vs,
                       cfg_options=args.cfg_options, device=device,
                       progress_factory=progress_factory)
    if args.json:
        _print_json(result)
        return 0
    console = _console()
    size = 'x'.join(str(s) for s in result['input_size'])
    flags = [result['dtype'], f'{result["threads"]} threads', result['device']]
    if result['channels_last']:
        flags.append('channels_last')
    if result['compile']:
        flags.append('torch.compile')
    table = Table(title=f'batch {result["batch"]} at {size}, {", ".join(flags)}; '
                  f'{result["warmup"]} warm-up + {result["iters"]} paired iterations')
    table.add_column('model', style='bold')
    for column in ('median ms', 'min ms', 'max ms', 'images/s'):
        table.add_column(column, justify='right')
    for row in result['rows']:
        table.add_row(row['model'], f'{row["median_ms"]:.2f}', f'{row["min_ms"]:.2f}',
                      f'{row["max_ms"]:.2f}', f'{row["images_per_s"]:.1f}')
    console.print(table)
    if 'ratio' in result:
        ratio = result['ratio']
        verdict = 'faster' if ratio >= 1 else 'slower'
        factor = ratio if ratio >= 1 else 1 / ratio
        console.print(f'ratio (other median / ours) = {ratio:.3f}: ours is {factor:.2f}x '
                      f'{verdict} than {result["rows"][1]["model"]}')
    return 0


def _rich_progress(console, description: str):
    """A factory ``total -> advance(n)`` callable showing a rich progress bar."""

    def factory(total: int):
        from rich.progress import Progress

        progress = Progress(console=console, transient=True)
        progress.start()
        task = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        advance.close = progress.stop
        return advance

    return factory


# ----- show ----------------------------------------------------------------------------------
def cmd_show(args) -> int:
    from .analysis.common import check_output_path
    from .analysis.featmap import show

    check_output_path(args.out, ('.png', ))
    device = _device(args.device)
    result = show(args.config, args.image, args.out, input_size=args.input_size,
                  cfg_options=args.cfg_options, panel=args.panel_size, device=device,
                  seed=args.seed, checkpoint=args.checkpoint, reduce=args.reduce,
                  checkpoint_strict=not args.non_strict)
    if args.json:
        _print_json(result)
        return 0
    stages = ', '.join(f'{s["name"]} {"x".join(str(d) for d in s["shape"][1:])}'
                       for s in result['stages'])
    print(f'wrote {os.path.abspath(result["output"])} ({result["width"]}x{result["height"]} px; '
          f'stages: {stages})')
    return 0


# ----- print-config --------------------------------------------------------------------------
def cmd_print_config(args) -> int:
    from .model_configs import load_model_config

    cfg = load_model_config(args.config, args.cfg_options)
    print(cfg.pretty_text)
    return 0


# ----- export --------------------------------------------------------------------------------
def cmd_export(args) -> int:
    from .analysis.common import check_output_path
    from .utils.optional import require

    require('onnx', 'mmbackbones export')
    from .analysis.onnx_export import export

    check_output_path(args.out, ('.onnx', ))
    _check_opset(args.opset)
    result = export(args.config, args.out, input_size=args.input_size, dynamic=args.dynamic,
                    batch=args.batch, opset=args.opset, verify=not args.no_verify,
                    cfg_options=args.cfg_options, seed=args.seed, checkpoint=args.checkpoint,
                    checkpoint_strict=not args.non_strict)
    if args.json:
        _print_json(result)
        return 0
    shape = 'x'.join(str(s) for s in result['input_shape'])
    print(f'wrote {os.path.abspath(result["path"])} (opset {result["opset"]}, input {shape}'
          f'{", dynamic batch/height/width" if result["dynamic"] else ""}; outputs: '
          f'{", ".join(result["outputs"])})')
    verify = result.get('verify')
    if isinstance(verify, str):
        print(f'onnxruntime check {verify}')
    elif verify:
        status = 'ok' if result['max_abs_diff'] <= args.atol else 'FAILED'
        inputs = ', '.join('x'.join(str(s) for s in c['input_shape']) for c in verify)
        print(f'onnxruntime check {status}: max |onnx - torch| = {result["max_abs_diff"]:.2e} '
              f'(tolerance {args.atol:g}; inputs {inputs})')
        if status != 'ok':
            for check in verify:
                for row in check['outputs']:
                    if row.get('error') or row['max_abs_diff'] > args.atol:
                        shape = 'x'.join(str(s) for s in check['input_shape'])
                        print(f'  input {shape}, output {row["name"]}: '
                              f'{row.get("error") or "max |diff| = %.2e" % row["max_abs_diff"]}')
            return 1
    return 0


# ----- convert, zoo --------------------------------------------------------------------------
def _checkpoint_call(fn, *args, **kwargs):
    """``fn(...)``; a bad file, hash, download or mismatch is a user error (one line, exit 2)."""
    from .checkpoint import CHECKPOINT_ERRORS

    try:
        return fn(*args, **kwargs)
    except CHECKPOINT_ERRORS as error:
        raise CLIError(str(error)) from None


def cmd_convert(args) -> int:
    from .checkpoint.convert import convert_checkpoint

    summary = _checkpoint_call(convert_checkpoint, args.src, args.dst, convert=args.convert,
                               prefix=args.prefix, model=args.model, strict=args.strict,
                               add_prefix=args.add_prefix, allowed_globals=args.allow_global)
    print(f'wrote {summary["dst"]}: {summary["num_tensors"]} tensors'
          + (f' (converted with {summary["converter"]})' if summary['converter'] else ''))
    if 'report' in summary:
        print(summary['report'])
    return 0


def cmd_zoo(args) -> int:
    from .checkpoint import download, format_zoo_table, list_zoo, resolve

    if args.download:
        entry = resolve(args.download if '://' in args.download else
                        f'mmbackbones://{args.download}')
        print(_checkpoint_call(download, entry['url'], sha256=entry.get('sha256')))
        return 0
    entries = list_zoo(args.pattern, args.source)
    if args.json or entries:
        _print_json(entries) if args.json else print(format_zoo_table(entries))
        return 0
    print(f'{PROG} zoo: no checkpoint matches {args.pattern!r} (run without a pattern to list '
          f'all)', file=sys.stderr)
    return 1


def _check_opset(opset: int) -> None:
    """Refuse an opset the installed torch cannot export, before building anything. torch's
    TorchScript exporter (the one ``export`` uses) has one ``torch.onnx.symbolic_opsetN`` module
    per opset it supports."""
    import pkgutil

    import torch.onnx

    supported = [int(m.name[len('symbolic_opset'):]) for m in pkgutil.iter_modules(
        torch.onnx.__path__) if m.name[len('symbolic_opset'):].isdigit()]
    low, high = 7, max(supported, default=17)
    if not low <= opset <= high:
        raise CLIError(f'--opset must be in {low}..{high} (what torch {torch.__version__} '
                       f'exports), got {opset}')


# ----- parser --------------------------------------------------------------------------------
def build_parser() -> ArgumentParser:
    """The parser of every command (building it imports neither torch nor mmengine)."""
    parser = ArgumentParser(
        prog=PROG, description='Inspect, benchmark, draw and export mmbackbones backbones.',
        epilog='Run `mmbackbones COMMAND --help` for the options of one command.')
    from .version import __version__

    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    p = sub.add_parser('list', help='registered backbone types and wrapped timm/torchvision '
                       'models')
    p.add_argument('pattern', nargs='?', default=None,
                   help='filter: a substring, or a glob like "resnet*" (case-insensitive)')
    p.add_argument('--configs', action='store_true',
                   help='also list the shipped configs (model names info/bench/show/export take)')
    p.add_argument('--pretrained', action='store_true',
                   help='also list the known pretrained weights (source, config, top-1)')
    p.add_argument('--timm', action='store_true', help='also list timm models')
    p.add_argument('--torchvision', action='store_true', help='also list torchvision models')
    p.add_argument('--json', action='store_true', help='print JSON instead of tables')
    p.set_defaults(func=cmd_list)

    p = sub.add_parser('info', help='outputs, params, FLOPs and forward memory of a config')
    _add_config(p)
    _add_input_size(p)
    p.add_argument('--neck', choices=('mmdet', 'mmseg'),
                   help='also print the in_channels a downstream mmdet/mmseg neck needs')
    p.add_argument('--no-flops', action='store_true', help='skip FLOP counting')
    p.add_argument('--no-memory', action='store_true', help='skip the forward-memory measure')
    _add_weights(p)
    _add_device(p)
    p.add_argument('--json', action='store_true', help='print JSON instead of tables')
    p.set_defaults(func=cmd_info)

    p = sub.add_parser('bench', help='latency and throughput, optionally against timm/'
                       'torchvision')
    _add_config(p)
    p.add_argument('--batch', type=_positive_int, default=1, help='batch size (default 1)')
    _add_input_size(p)
    p.add_argument('--channels-last', action='store_true', help='channels_last memory format')
    p.add_argument('--compile', action='store_true', help='torch.compile the models')
    p.add_argument('--dtype', choices=('float32', 'bfloat16', 'float16'), default='float32',
                   help='weights and input dtype (default float32)')
    p.add_argument('--iters', type=_positive_int, default=20,
                   help='timed iterations (default 20)')
    p.add_argument('--warmup', type=_non_negative_int, default=5,
                   help='untimed warm-up iterations (default 5)')
    p.add_argument('--vs', metavar='MODEL',
                   help='compare with timm:<name>, torchvision:<name> or another config file, '
                   'run alternately in the same process')
    p.add_argument('--threads', type=_positive_int, default=None,
                   help='torch CPU threads (default: torch\'s choice)')
    _add_device(p)
    p.add_argument('--json', action='store_true', help='print JSON instead of tables')
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser('show', help='picture of each output stage (principal components, '
                       'channel norm or mean)')
    _add_config(p)
    p.add_argument('image', type=_existing_file, help='input image (PNG, JPEG, ...)')
    p.add_argument('-o', '--out', required=True, help='output picture (.png)')
    _add_input_size(p, 'the image is resized to this')
    p.add_argument('--panel-size', type=_positive_int, default=256,
                   help='pixels per panel side (default 256)')
    p.add_argument('--reduce', choices=('pca', 'norm', 'mean'), default='pca',
                   help='how each map loses its channels: pca (first 3 principal components '
                   'as RGB, default), norm (L2 norm), mean (zero after a LayerNorm)')
    _add_weights(p)
    _add_device(p)
    p.add_argument('--json', action='store_true', help='print JSON instead of a sentence')
    p.set_defaults(func=cmd_show)

    p = sub.add_parser('print-config', help='the merged config after _base_ and overrides')
    _add_config(p)
    p.set_defaults(func=cmd_print_config)

    p = sub.add_parser('export', help='ONNX export with named outputs, checked in onnxruntime')
    _add_config(p)
    p.add_argument('-o', '--out', required=True, help='output file (.onnx)')
    _add_input_size(p)
    p.add_argument('--batch', type=_positive_int, default=1, help='batch size traced (default 1)')
    p.add_argument('--dynamic', action='store_true', help='dynamic batch, height and width')
    p.add_argument('--opset', type=_positive_int, default=17,
                   help='ONNX opset (default 17; 7 up to the highest the installed torch exports)')
    p.add_argument('--no-verify', action='store_true',
                   help='skip the onnxruntime comparison with PyTorch')
    p.add_argument('--atol', type=_non_negative_float, default=1e-4,
                   help='largest |onnx - torch| accepted by the check (default 1e-4)')
    _add_weights(p)
    p.add_argument('--json', action='store_true', help='print JSON instead of a sentence')
    p.set_defaults(func=cmd_export)

    p = sub.add_parser('convert', help='convert a timm/torchvision/mmpretrain/detectron2 '
                       'checkpoint to our names')
    p.add_argument('src', help='checkpoint: local path, URL or zoo name (mmcls://resnet50, '
                   'timm://resnet50, torchvision://resnet50, ...)')
    p.add_argument('dst', help='output file (.safetensors by default; .pth for torch.save), '
                   'written to a temporary file and renamed: DST may be SRC')
    p.add_argument('--convert', default='auto', metavar='SOURCE',
                   help='source key layout: auto (default: detect from the keys), timm, '
                   'torchvision, mmpretrain, detectron2, ... or none')
    p.add_argument('--prefix', help="take the weights under this prefix, e.g. 'backbone'")
    p.add_argument('--add-prefix', help="prefix written keys, e.g. 'backbone.' (mmdet)")
    p.add_argument('--model', help='check against a backbone: a config file or a JSON dict '
                   'such as \'{"type": "ResNet", "depth": 50}\'')
    p.add_argument('--strict', action='store_true', help='with --model: every key must match')
    p.add_argument('--allow-global', action='append', metavar='MODULE.NAME',
                   help='trust this pickled type in the source file (repeatable)')
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser('zoo', help='list (or download) the known pretrained checkpoints')
    p.add_argument('pattern', nargs='?',
                   help="glob or substring of a name, alias or arch type ('resnet50*')")
    p.add_argument('--source', choices=['mmcls', 'torchvision', 'timm'],
                   help='only entries of this source')
    p.add_argument('--json', action='store_true', help='print the entries as JSON')
    p.add_argument('--download', metavar='NAME', help='download one entry (scheme://name or a '
                   'name) into the cache and print its path')
    p.set_defaults(func=cmd_zoo)
    return parser




def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv  # accepted anywhere, e.g. `python tools/info.py --debug ...`
    argv = [a for a in argv if a != '--debug']
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = debug or os.environ.get('MMBACKBONES_DEBUG', '') not in ('', '0')
    return run_command(f'{PROG} {args.command}', args.func, args, debug,
                       rerun=f'{PROG} --debug {args.command} ...')


if __name__ == '__main__':
    sys.exit(main())
