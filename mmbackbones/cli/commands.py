"""The subcommands: each ``cmd_<name>(args)`` imports what it needs when it runs and returns
the exit code; errors go to the shared path in :mod:`.errors`."""
import contextlib
import json
import os
import sys

from ..analysis.common import CLIError
from .arguments import PROG, _device

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

    from ..analysis import listing

    data = {}
    if not (args.configs or args.pretrained):  # those two list names, not types
        data['registered'] = listing.registered_types(args.pattern)
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
    if 'registered' in data:
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

    from ..analysis.info import backbone_info, format_neck_snippet

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
        return _report_mismatches(info['mismatches'])
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
    if args.neck:
        console.print()
        for key, value in info['neck'].items():
            shown = [v['in_channels'] for v in value] if isinstance(value, list) else \
                value['in_channels']
            console.print(f'[bold]{args.neck} {key}[/bold]: in_channels={shown}',
                          highlight=False)
        console.print(format_neck_snippet(info['neck']), markup=False, highlight=False)
    return _report_mismatches(info['mismatches'])


def _report_mismatches(mismatches) -> int:
    """Declared output metadata that the forward contradicts: one line on stderr naming the
    outputs, exit code 1 (necks and ``in_channels='auto'`` would get the declared values)."""
    if not mismatches:
        return 0
    print(f'{PROG} info: failed: the declared output metadata disagrees with the forward: '
          f'{"; ".join(mismatches)}', file=sys.stderr)
    return 1


# ----- bench ---------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    from rich.table import Table

    from ..analysis.benchmark import run_bench

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
        from ..analysis.benchmark import speed_sentence

        console.print(f'ratio (other median / ours) = {result["ratio"]:.3f}: '
                      f'{speed_sentence(result["ratio"], result["rows"][1]["model"])}')
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
    from ..analysis.common import check_output_path
    from ..analysis.featmap import show

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
    from ..model_configs import load_model_config

    cfg = load_model_config(args.config, args.cfg_options)
    print(cfg.pretty_text)
    return 0


# ----- export --------------------------------------------------------------------------------
def cmd_export(args) -> int:
    from ..analysis.common import check_output_path
    from ..utils.optional import require

    require('onnx', 'mmbackbones export')
    from ..analysis.onnx_export import export

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
    """``fn(...)``; a bad file, hash or mismatch is a user error (one line, exit 2); a download
    that fails (no network, a server error, a cache folder that cannot be written) is an
    environment failure (one line, exit 1)."""
    from ..analysis.common import EnvironmentFailure
    from ..checkpoint import CHECKPOINT_ERRORS
    from ..checkpoint.download import DownloadError

    try:
        return fn(*args, **kwargs)
    except DownloadError as error:
        raise EnvironmentFailure(str(error)) from None
    except CHECKPOINT_ERRORS as error:
        raise CLIError(str(error)) from None


def _convert_model(model):
    """``--model``: a config file or a JSON dict go to ``convert_checkpoint`` as they are; a model
    name (``convnext-tiny``, ``timm.resnet50``) or a registered type (``ResNet``) is built here,
    as every other command builds it."""
    if model is None or os.path.isfile(model) or model.lstrip().startswith('{'):
        return model
    from ..analysis.common import load_backbone_config
    from ..builder import build_backbone

    return build_backbone(load_backbone_config(model)[1])


def cmd_convert(args) -> int:
    from ..analysis.common import check_output_path
    from ..checkpoint.convert import convert_checkpoint, format_kept_and_dropped

    check_output_path(args.dst, ())  # before the model is built or the source read
    if getattr(args, 'to', None):
        return _cmd_convert_to(args)

    model = _convert_model(args.model)
    summary = _checkpoint_call(convert_checkpoint, args.src, args.dst, convert=args.convert,
                               prefix=args.prefix, model=model,
                               strict=True if args.strict else False if args.non_strict else None,
                               add_prefix=args.add_prefix, allowed_globals=args.allow_global,
                               keep_all=args.keep_all)
    print(f'wrote {summary["dst"]}: {summary["num_tensors"]} tensors'
          + (f' (converted with {summary["converter"]})' if summary['converter'] else ''))
    for line in format_kept_and_dropped(summary):
        print(line)
    if 'report' in summary:
        print(summary['report'])
    return 0


def _cmd_convert_to(args) -> int:
    """``convert SRC DST --to LIB``: our names -> the native layout of LIB."""
    from ..checkpoint.convert import convert_checkpoint_to
    if args.convert not in ('auto', 'none') or args.add_prefix or args.strict:
        raise CLIError('--to writes our names back out: it takes --prefix, --model and '
                       '--allow-global, not --convert/--add-prefix/--strict')
    model = args.model
    if model and model.lstrip().startswith('{'):
        model = json.loads(model)
    try:
        summary = _checkpoint_call(convert_checkpoint_to, args.src, args.dst, to=args.to,
                                   prefix=args.prefix, model=model,
                                   allowed_globals=args.allow_global)
    except (ValueError, KeyError) as error:
        why = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise CLIError(f'convert --to {args.to}: {why}') from None
    where = f' (backbone under {summary["prefix"]!r})' if summary['prefix'] else ''
    print(f'wrote {summary["dst"]}: {summary["num_tensors"]} tensors, a {summary["family"]} '
          f'in the {args.to} layout{where}')
    return 0


def cmd_zoo(args) -> int:
    from ..checkpoint import download, format_zoo_table, list_zoo, resolve

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
