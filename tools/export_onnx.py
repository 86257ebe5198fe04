"""Export a backbone to ONNX with named outputs and check it in onnxruntime.

    python tools/export_onnx.py configs/resnet/resnet50.py -o work_dirs/resnet50.onnx --dynamic

Same as ``mmbackbones export ...``; see ``mmbackbones export --help`` and mmbackbones/cli/.
"""
import sys

from mmbackbones.cli import main

if __name__ == '__main__':
    sys.exit(main(['export'] + sys.argv[1:]))
