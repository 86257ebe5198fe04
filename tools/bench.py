"""Benchmark a backbone (median/min/max latency, images/s), optionally against timm/torchvision.

    python tools/bench.py configs/resnet/resnet50.py --batch 8 --vs timm:resnet50

Same as ``mmbackbones bench ...``; see ``mmbackbones bench --help`` and mmbackbones/cli/.
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['bench'] + sys.argv[1:]))
