"""Our norm types build through mmcv's builder in a fresh process, before anything else has
registered them (a test order used to hide that ``ConvNormAct(norm_cfg=FrozenBN)`` raised)."""
import subprocess
import sys

CODE = '''
from mmbackbones.models.layers.conv_norm_act import ConvNormAct
from mmbackbones.models.layers.mmcv_bricks import build_norm_layer
print(type(ConvNormAct(3, 8, 3, norm_cfg=dict(type='FrozenBN')).bn).__name__)
print(type(build_norm_layer(dict(type='LN2d'), 8)[1]).__name__)
'''


def test_frozen_bn_and_ln2d_build_in_a_fresh_process():
    out = subprocess.run([sys.executable, '-c', CODE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ['FrozenBatchNorm2d', 'LayerNorm2d']
