"""List the known pretrained checkpoints (URL, source, top-1), or download one into the cache.

    python tools/zoo.py convnext
    python tools/zoo.py --download timm://convnext_tiny.fb_in1k

Same as ``mmbackbones zoo ...``; the cache is ``$MMBACKBONES_HOME/checkpoints`` (default
``~/.cache/mmbackbones/checkpoints``). See ``mmbackbones/checkpoint/zoo.py``.
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['zoo'] + sys.argv[1:]))
