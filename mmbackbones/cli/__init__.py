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
import os
import sys
from typing import List, Optional

from .arguments import PROG
from .errors import run_command
from .parser import build_parser

__all__ = ['main', 'build_parser']


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv  # accepted anywhere, e.g. `python tools/info.py --debug ...`
    argv = [a for a in argv if a != '--debug']
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = debug or os.environ.get('MMBACKBONES_DEBUG', '') not in ('', '0')
    return run_command(f'{PROG} {args.command}', args.func, args, debug,
                       rerun=f'{PROG} --debug {args.command} ...')
