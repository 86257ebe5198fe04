r"""Convert a checkpoint (timm, torchvision, mmpretrain, detectron2) to mmbackbones names.

    python tools/convert_checkpoint.py resnet50_timm.pth resnet50.safetensors
    python tools/convert_checkpoint.py model_final.pkl r50.safetensors --convert detectron2
    python tools/convert_checkpoint.py mmcls://resnet50 r50.safetensors \
        --model configs/resnet/resnet50.py

Same as ``mmbackbones convert`` (``mmbackbones/cli/``).
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['convert', *sys.argv[1:]]))
