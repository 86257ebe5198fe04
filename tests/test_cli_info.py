"""``mmbackbones info``: outputs from a real forward, params, FLOPs, memory, neck channels."""
import json

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli, write_toy_config

# ToyBackbone: stem conv 3->4 (k3, s2) + BN, then stages conv 4->8->16->32 (k3, s2) + BN.
TOY_CONVS = ((3, 4, 2), (4, 8, 4), (8, 16, 8), (16, 32, 16))  # (in, out, output stride)


def toy_conv_macs(height, width):
    return sum(cin * cout * 9 * (height // s) * (width // s) for cin, cout, s in TOY_CONVS)


@pytest.fixture(scope='module')
def info_json(tmp_path_factory):
    folder = tmp_path_factory.mktemp('info')
    config = write_toy_config(folder, backbone='frozen_stages=0')
    result = run_cli('info', config, '--input-size', '32', '48', '--json', '--neck', 'mmdet')
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_outputs_come_from_a_forward(info_json):
    assert info_json['type'] == 'ToyBackbone'
    assert info_json['weights'] == 'random weights, seed 0'
    assert info_json['input_shape'] == [1, 3, 32, 48]
    outputs = info_json['outputs']
    assert [o['name'] for o in outputs] == ['stage1', 'stage2', 'stage3']
    assert [o['channels'] for o in outputs] == [8, 16, 32]
    assert [o['stride'] for o in outputs] == [4, 8, 16]
    assert [o['shape'] for o in outputs] == [[1, 8, 8, 12], [1, 16, 4, 6], [1, 32, 2, 3]]
    assert info_json['mismatches'] == []


def test_params_and_frozen_params(info_json):
    from tests.toy_backbone import ToyBackbone
    model = ToyBackbone(frozen_stages=0)
    assert info_json['params'] == sum(p.numel() for p in model.parameters())
    assert info_json['frozen_params'] == sum(p.numel() for p in model.stem.parameters())
    assert info_json['frozen_params'] == 3 * 4 * 9 + 4 + 2 * 4  # conv w + b, BN w + b
    assert info_json['trainable_params'] == info_json['params'] - info_json['frozen_params']


def test_flops_are_the_conv_multiply_adds(info_json):
    macs = toy_conv_macs(32, 48)
    # fvcore convention: conv multiply-adds, plus a small count for the eval-mode BNs.
    assert macs <= info_json['flops'] <= macs * 1.1
    assert info_json['flops_unsupported_ops'] == {}


def test_forward_memory(info_json):
    stem_output = 4 * 16 * 24 * 4  # float32 bytes of the largest activation
    outputs = (8 * 8 * 12 + 16 * 4 * 6 + 32 * 2 * 3) * 4
    inference, autograd = info_json['memory_inference'], info_json['memory_autograd']
    assert inference['peak'] >= stem_output
    assert inference['retained'] == outputs  # only the returned maps outlive the forward
    # With autograd the activations saved for backward stay alive after forward.
    assert autograd['retained'] > outputs and autograd['peak'] >= inference['peak']


def test_neck_mmdet_in_channels(info_json):
    assert info_json['neck'] == dict(neck=dict(type='FPN', in_channels=[8, 16, 32],
                                               out_channels=256, num_outs=5))


def test_table_output_and_neck_snippets(tmp_path):
    config = write_toy_config(tmp_path)
    result = run_cli('info', config, '--input-size', '64', '64', '--neck', 'mmseg', '--no-flops',
                     '--cfg-options', 'model.backbone.out_indices=(1,2)')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'ToyBackbone' in out and 'stage2' in out and 'stage3' in out
    assert '1 x 16 x 8 x 8' in out and '1 x 32 x 4 x 4' in out
    assert 'stage1' not in out  # --cfg-options removed it
    assert 'frozen params' in out and 'forward memory' in out
    assert 'FLOPs' not in out  # --no-flops
    assert 'mmseg decode_head: in_channels=[16, 32]' in out
    assert 'mmseg auxiliary_head: in_channels=16' in out
    assert 'decode_head=dict(in_channels=[16, 32], in_index=[0, 1])' in out


def test_real_backbone_info(tmp_path):
    config = tmp_path / 'resnet18.py'
    config.write_text("model = dict(backbone=dict(type='ResNet', depth=18, "
                      "out_indices=(0, 1, 2, 3), frozen_stages=1))\n")
    result = run_cli('info', config, '--input-size', '64', '64', '--json', '--neck', 'mmdet',
                     '--no-memory')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [o['channels'] for o in data['outputs']] == [64, 128, 256, 512]
    assert [o['shape'][2] for o in data['outputs']] == [16, 8, 4, 2]
    assert data['params'] == 11176512  # torchvision resnet18 without fc
    assert 0 < data['frozen_params'] < data['params']
    assert data['neck']['neck']['in_channels'] == [64, 128, 256, 512]
    # ResNet-18 at 224 is 1.82 GFLOPs; at 64x64 the convs scale by (64/224)^2.
    assert 0.9 * 1.82e9 * (64 / 224)**2 < data['flops'] < 1.1 * 1.82e9 * (64 / 224)**2
    assert 'memory_inference' not in data


def test_missing_checkpoint_is_one_line_error(tmp_path):
    config = write_toy_config(tmp_path)
    assert_one_line_error(run_cli('info', config, '--checkpoint', tmp_path / 'none.pth'),
                          'argument --checkpoint: file not found')


def test_checkpoint_with_wrong_keys_is_one_line_error(tmp_path):
    import torch
    config = write_toy_config(tmp_path)
    torch.save({'state_dict': {'foo.weight': torch.zeros(3)}}, tmp_path / 'bad.pth')
    assert_one_line_error(
        run_cli('info', config, '--checkpoint', tmp_path / 'bad.pth', '--no-flops',
                '--no-memory'), 'mmbackbones info: error: --checkpoint',
        '24 missing')


def test_neck_mmseg_prints_every_head_that_reads_the_backbone(tmp_path):
    """A PSPNet-style config: the decode head reads output 2, the auxiliary head output 1."""
    config = tmp_path / 'pspnet_toy.py'
    config.write_text(
        "custom_imports = dict(imports=['toy_backbone'], allow_failed_imports=False)\n"
        "model = dict(type='EncoderDecoder', backbone=dict(type='ToyBackbone'),\n"
        "             decode_head=dict(type='PSPHead', in_channels='auto', in_index=2),\n"
        "             auxiliary_head=dict(type='FCNHead', in_channels='auto', in_index=1))\n")
    result = run_cli('info', config, '--input-size', '32', '32', '--neck', 'mmseg',
                     '--no-flops', '--no-memory')
    assert result.returncode == 0, result.stderr
    assert 'mmseg decode_head: in_channels=32' in result.stdout
    assert 'mmseg auxiliary_head: in_channels=16' in result.stdout
    assert 'auxiliary_head=dict(in_channels=16, in_index=1)' in result.stdout


def test_neck_settings_for_a_list_of_heads_and_a_neck():
    from mmbackbones.analysis.info import format_neck_snippet, neck_settings
    from tests.toy_backbone import ToyBackbone
    model = ToyBackbone()
    heads = dict(decode_head=dict(in_index=[0, 2]),
                 auxiliary_head=[dict(in_index=1), dict(in_index=0)])
    settings = neck_settings(model, 'mmseg', heads)
    assert settings == dict(decode_head=dict(in_channels=[8, 32], in_index=[0, 2]),
                            auxiliary_head=[dict(in_channels=16, in_index=1),
                                            dict(in_channels=8, in_index=0)])
    assert 'auxiliary_head=[dict(in_channels=16, in_index=1), dict(in_channels=8, in_index=0)]' \
        in format_neck_snippet(settings)
    # no heads in the config: every output for the decode head, the second-to-last for the aux
    assert neck_settings(model, 'mmseg')['auxiliary_head'] == dict(in_channels=16, in_index=1)
    # with a neck, the heads read the neck: its in_channels are what the backbone decides
    assert neck_settings(model, 'mmseg', dict(neck=dict(type='FPN'), decode_head={})) == dict(
        neck=dict(type='FPN', in_channels=[8, 16, 32]))
