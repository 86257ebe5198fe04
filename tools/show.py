"""Draw the mean activation of each output stage next to the input image.

    python tools/show.py configs/resnet/resnet50.py demo/demo.png -o work_dirs/resnet50.png

Same as ``mmbackbones show ...``; see ``mmbackbones show --help`` and mmbackbones/cli/.
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['show'] + sys.argv[1:]))
