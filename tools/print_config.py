"""Print the merged config (after _base_ and --cfg-options) as mmengine writes it.

    python tools/print_config.py configs/resnet/resnet50.py --cfg-options model.backbone.depth=101

Same as ``mmbackbones print-config ...``; see ``mmbackbones print-config --help`` and
mmbackbones/cli/.
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['print-config'] + sys.argv[1:]))
