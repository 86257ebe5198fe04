"""``mmbackbones show``: a PNG of the mean activation per stage next to the input."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.cli_helpers import DEMO_IMAGE, assert_one_line_error, run_cli, write_toy_config

MARGIN, TITLE, CAPTION = 8, 40, 24  # the layout documented in mmbackbones/analysis/featmap.py


def expected_size(num_outputs, panel):
    n = num_outputs + 1
    return n * panel + (n + 1) * MARGIN, TITLE + panel + CAPTION + 2 * MARGIN


def test_demo_image_is_shipped():
    with Image.open(DEMO_IMAGE) as image:
        assert image.format == 'PNG' and image.size == (320, 240) and image.mode == 'RGB'


def test_show_writes_a_png_of_the_expected_size(tmp_path):
    config = write_toy_config(tmp_path)
    out = tmp_path / 'toy.png'
    result = run_cli('show', config, DEMO_IMAGE, '-o', out, '--input-size', '64', '64',
                     '--panel-size', '96', '--json')
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info['stages'] == [dict(name='stage1', channels=8, shape=[1, 8, 16, 16]),
                              dict(name='stage2', channels=16, shape=[1, 16, 8, 8]),
                              dict(name='stage3', channels=32, shape=[1, 32, 4, 4])]
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == 'PNG'
        assert image.size == expected_size(3, 96) == (info['width'], info['height'])
        pixels = np.asarray(image.convert('RGB'), dtype=np.float32)
    # Every panel holds a picture (not a blank square): its pixels vary.
    top = MARGIN + TITLE
    for i in range(4):
        left = MARGIN + i * (96 + MARGIN)
        panel = pixels[top + 4:top + 92, left + 4:left + 92]
        assert panel.std() > 5, f'panel {i} looks empty'
    # The input panel shows the demo image: blue sky at the top, green at the bottom.
    left = MARGIN
    sky = pixels[top + 6, left + 10:left + 40].mean(axis=0)
    meadow = pixels[top + 90, left + 10:left + 40].mean(axis=0)
    assert sky[2] > sky[0] and meadow[1] > meadow[2]


def test_show_sentence_output_and_vector_outputs(tmp_path):
    # A backbone whose output is a vector gets a labelled empty panel, not a crash.
    config = tmp_path / 'vit.py'
    config.write_text("model = dict(backbone=dict(type='VisionTransformer', arch='deit-tiny', "
                      "img_size=32, patch_size=16, out_type='cls_token'))\n")
    out = tmp_path / 'vit.png'
    result = run_cli('show', config, DEMO_IMAGE, '-o', out, '--panel-size', '64')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('wrote ') and str(out) in result.stdout
    with Image.open(out) as image:
        assert image.size == expected_size(1, 64)


@pytest.mark.parametrize('make_args, fragment', [
    (lambda tmp: [tmp / 'none.png', '-o', tmp / 'o.png'], 'argument image: file not found'),
    (lambda tmp: [tmp / 'toy.py', '-o', tmp / 'o.png'], 'cannot read image'),
    (lambda tmp: [DEMO_IMAGE, '-o', tmp / 'o.jpg'], 'output file must end with .png'),
    (lambda tmp: [DEMO_IMAGE, '-o', tmp / 'missing' / 'o.png'], 'output folder does not exist'),
    (lambda tmp: [DEMO_IMAGE], 'the following arguments are required: -o/--out'),
    (lambda tmp: [DEMO_IMAGE, '-o', tmp / 'o.png', '--panel-size', '8'], '--panel-size'),
])
def test_show_errors(tmp_path, make_args, fragment):
    config = write_toy_config(tmp_path)
    assert_one_line_error(run_cli('show', config, *make_args(tmp_path)), 'mmbackbones show',
                          fragment)


def test_pca_shows_what_the_channel_mean_of_a_layernorm_output_hides():
    """After a LayerNorm every position's channel mean is 0: the old mean panel was noise."""
    import torch

    from mmbackbones.analysis.featmap import reduce_channels
    torch.manual_seed(0)
    left, right = torch.randn(16), torch.randn(16)
    fmap = torch.empty(16, 4, 8)
    fmap[:, :, :4] = left[:, None, None]
    fmap[:, :, 4:] = right[:, None, None]
    fmap = torch.nn.functional.layer_norm(fmap.permute(1, 2, 0), (16, )).permute(2, 0, 1)
    assert abs(reduce_channels(fmap, 'mean')).max() < 1e-5  # nothing to see
    rgb = reduce_channels(fmap, 'pca')
    assert rgb.shape == (4, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1
    first = rgb[..., 0]
    assert abs(first[:, :4] - first[:, 4:].mean()).min() > 0.9  # the halves are far apart
    norm = reduce_channels(fmap, 'norm')
    assert norm.shape == (4, 8)


def test_show_reduce_option(tmp_path):
    import os

    from mmbackbones.cli import main
    out = tmp_path / 'vit.png'
    image = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'demo',
                         'demo.png')
    assert main(['show', 'vit-tiny-p16_224', image, '-o', str(out), '--input-size', '32', '32',
                 '--panel-size', '32', '--reduce', 'norm', '--cfg-options',
                 'model.backbone.out_type=featmap']) == 0
    assert out.stat().st_size > 0
