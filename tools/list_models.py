"""List registered backbone types and the timm/torchvision models they wrap.

    python tools/list_models.py resnet --timm --torchvision

Same as ``mmbackbones list ...``; see ``mmbackbones list --help`` and mmbackbones/cli/.
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['list'] + sys.argv[1:]))
