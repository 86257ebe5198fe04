"""The parser of every subcommand (building it imports neither torch nor mmengine)."""
from .arguments import (PROG, ArgumentParser, _add_config, _add_device, _add_input_size,
                        _add_weights, _existing_file, _non_negative_float, _non_negative_int,
                        _positive_int)
from .commands import (cmd_bench, cmd_convert, cmd_export, cmd_info, cmd_list, cmd_print_config,
                       cmd_show, cmd_zoo)


def _finish(parser, func, *, device: bool = False, json: str = '') -> None:
    """The options most commands end with (``--device``, ``--json``: print JSON instead of
    ``json``), and the function that runs the command."""
    if device:
        _add_device(parser)
    if json:
        parser.add_argument('--json', action='store_true', help=f'print JSON instead of {json}')
    parser.set_defaults(func=func)


def _add_list(sub) -> None:
    p = sub.add_parser('list', help='registered backbone types and wrapped timm/torchvision '
                       'models')
    p.add_argument('pattern', nargs='?', default=None,
                   help='filter: a substring, or a glob like "resnet*" (case-insensitive)')
    p.add_argument('--configs', action='store_true',
                   help='list the shipped configs (model names info/bench/show/export take) '
                   'instead of the registered types')
    p.add_argument('--pretrained', action='store_true',
                   help='list the known pretrained weights (source, config, task and result: '
                   'ImageNet top-1, COCO box AP, mIoU) instead of '
                   'the registered types')
    p.add_argument('--timm', action='store_true', help='also list timm models')
    p.add_argument('--torchvision', action='store_true', help='also list torchvision models')
    _finish(p, cmd_list, json='tables')


def _add_info(sub) -> None:
    p = sub.add_parser('info', help='outputs, params, FLOPs and forward memory of a config')
    _add_config(p)
    _add_input_size(p)
    p.add_argument('--neck', choices=('mmdet', 'mmseg'),
                   help='also print the in_channels a downstream mmdet/mmseg neck needs')
    p.add_argument('--no-flops', action='store_true', help='skip FLOP counting')
    p.add_argument('--no-memory', action='store_true', help='skip the forward-memory measure')
    _add_weights(p)
    _finish(p, cmd_info, device=True, json='tables')


def _add_bench(sub) -> None:
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
    _finish(p, cmd_bench, device=True, json='tables')


def _add_show(sub) -> None:
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
    _finish(p, cmd_show, device=True, json='a sentence')


def _add_print_config(sub) -> None:
    p = sub.add_parser('print-config', help='the merged config after _base_ and overrides')
    _add_config(p)
    _finish(p, cmd_print_config)


def _add_export(sub) -> None:
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
    _finish(p, cmd_export, json='a sentence')


def _add_convert(sub) -> None:
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
    p.add_argument('--model', help='check against a backbone: a config file, a model name '
                   '(convnext-tiny, timm.resnet50; `list --configs`), a registered type with its '
                   'defaults (ConvNeXt) or a JSON dict such as \'{"type": "ResNet", "depth": '
                   '50}\'')
    p.add_argument('--keep-all', action='store_true',
                   help='a whole-model file (mmseg/mmdet/mmpretrain): also write the modules '
                   'that are not the backbone (decode_head, auxiliary_head, neck, head, ...) '
                   'unchanged, and the converted backbone under its prefix (backbone.)')
    strictness = p.add_mutually_exclusive_group()
    strictness.add_argument('--strict', action='store_true',
                            help='with --model: every key must match (by default a load that '
                            'leaves tensors of the model at init or drops tensors of its '
                            'modules is refused; classifier heads and the like are named)')
    strictness.add_argument('--non-strict', action='store_true',
                            help='with --model: check shapes only, load what matches')
    p.add_argument('--allow-global', action='append', metavar='MODULE.NAME',
                   help='trust this pickled type in the source file (repeatable)')
    p.add_argument('--to', choices=('mmpretrain', 'mmdet', 'mmseg', 'detectron2', 'timm',
                                    'torchvision'),
                   help='the way back: write SRC (our names; a backbone or a whole model) in '
                   "this library's layout, for its native module to load with strict=True "
                   '(--prefix: where the backbone is, default detected; --model: its type '
                   'when the keys cannot tell)')
    _finish(p, cmd_convert)


def _add_zoo(sub) -> None:
    p = sub.add_parser('zoo', help='list (or download) the known pretrained checkpoints')
    p.add_argument('pattern', nargs='?',
                   help="glob or substring of a name, alias or arch type ('resnet50*')")
    # checkpoint.zoo.ZOO_SOURCES (not imported: that package imports torch)
    p.add_argument('--source', choices=['mmcls', 'torchvision', 'timm', 'mmdet', 'mmseg',
                                        'official'],
                   help='only entries of this source')
    p.add_argument('--json', action='store_true', help='print the entries as JSON')
    p.add_argument('--download', metavar='NAME', help='download one entry (scheme://name or a '
                   'name) into the cache and print its path')
    _finish(p, cmd_zoo)


# one adder per subcommand, in the order `mmbackbones --help` lists them
COMMANDS = (_add_list, _add_info, _add_bench, _add_show, _add_print_config, _add_export,
            _add_convert, _add_zoo)


def build_parser() -> ArgumentParser:
    """The parser of every command (building it imports neither torch nor mmengine)."""
    parser = ArgumentParser(
        prog=PROG, description='Inspect, benchmark, draw and export mmbackbones backbones.',
        epilog='Run `mmbackbones COMMAND --help` for the options of one command.')
    from ..version import __version__

    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser
