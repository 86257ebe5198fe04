"""Print the outputs (name, channels, stride, shape), params, FLOPs and forward memory of a config.

    python tools/info.py configs/resnet/resnet50.py --input-size 224 224 --neck mmdet

Same as ``mmbackbones info ...``; see ``mmbackbones info --help`` and mmbackbones/cli/.
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['info'] + sys.argv[1:]))
