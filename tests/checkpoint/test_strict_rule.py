"""No half-load by default: ``check_state_dict_fits`` through every route (``Pretrained``,
``load_checkpoint``, ``convert --model``, the CLI's ``--checkpoint``), its named exceptions and
the ``strict=False`` opt-out."""
import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.checkpoint import CheckpointMismatchError, load_checkpoint
from mmbackbones.checkpoint.convert import convert_checkpoint
from mmbackbones.checkpoint.converters.timm_cspnet import convert_timm_cspnet
from mmbackbones.checkpoint.state import check_state_dict_fits
from mmbackbones.cli import main as cli_main

timm = pytest.importorskip('timm', reason='timm is optional')

X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


def _timm_file(folder, name, **kwargs):
    ref = _randomize_bn(timm.create_model(name, pretrained=False, **kwargs)).eval()
    path = folder / f'{name}.pth'
    torch.save(ref.state_dict(), path)
    return ref, str(path)


@pytest.fixture(scope='module')
def csp53(tmp_path_factory):
    """A random timm ``cspdarknet53`` (BN statistics too) and its saved state dict."""
    return _timm_file(tmp_path_factory.mktemp('csp53'), 'cspdarknet53')


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# ----- the two cases -------------------------------------------------------------------
def test_timm_cspdarknet53_loads_exactly_through_init_cfg(csp53, mm_log):
    ref, path = csp53
    model = build_backbone(dict(type='CSPDarkNet', depth=53, out_indices=(0, 1, 2, 3, 4),
                                init_cfg=dict(type='Pretrained', checkpoint=path)))
    model.init_weights()
    model.eval()
    theirs = ref.state_dict()
    # every tensor of the model came from the checkpoint (before: 297 of 402, norms at init)
    converted = convert_timm_cspnet(theirs)
    own = model.state_dict()
    assert set(own) == set(converted)
    assert all(torch.equal(own[k], converted[k]) for k in own)
    assert torch.equal(model.stem.bn.running_var, theirs['stem.conv1.bn.running_var'])
    assert torch.equal(model.stages[2].atfer_blocks_conv.bn.weight,
                       theirs['stages.2.conv_transition_b.bn.weight'])
    assert 'converted with timm_cspnet' in mm_log.text
    with torch.no_grad():
        outs = model(X)
        refs = ref.forward_intermediates(X, intermediates_only=True)[-5:]  # not the stem
    assert len(outs) == len(refs) == 5
    for a, b in zip(outs, refs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_unconverted_cspnet_layout_is_refused_naming_keys_and_layout(csp53):
    _, path = csp53
    model = build_backbone(dict(type='CSPDarkNet', depth=53))
    before = _snapshot(model)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(model, path, convert=None, logger='silent')
    message = str(info.value)
    assert 'nothing was loaded' in message
    assert '105 missing' in message and 'stem.conv.weight' in message
    assert 'stem.conv1.conv.weight' in message  # the unexpected twin
    assert "a layout that was not converted (timm's cspnet layout" in message
    assert 'timm_cspnet' in message and 'strict=False' in message
    assert _unchanged(model, before)


def test_layout_without_a_converter_says_so(tmp_path):
    # timm's CSP3 nets (cs3*) have stages mmpretrain's CSPNet does not
    _, path = _timm_file(tmp_path, 'cs3darknet_s')
    with pytest.raises(CheckpointMismatchError, match=r"timm_cspnet does not convert it: "
                                                      r"stages\.0 .*no conv_transition_b"):
        load_checkpoint(build_backbone(dict(type='CSPDarkNet', depth=53)), path,
                        logger='silent')
    # a layout nobody knows: ResNet names spelled differently
    sd = {k.replace('layer', 'stage_'): v
          for k, v in build_backbone(dict(type='ResNet', depth=18)).state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match='no converter knows this layout'):
        check_state_dict_fits(build_backbone(dict(type='ResNet', depth=18)), sd)


def test_timm_dinov2_layer_scale_is_refused_by_name(tmp_path):
    ref = timm.create_model('vit_small_patch14_dinov2', pretrained=False, img_size=28).eval()
    with torch.no_grad():
        for name, param in ref.named_parameters():
            if '.ls' in name:
                param.copy_(torch.rand(param.shape) + 0.5)
    path = tmp_path / 'dinov2.pth'
    torch.save(ref.state_dict(), path)
    # dinov2's shape without layer scale: the file's 24 gamma tensors have nowhere to go
    no_scale = dict(embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1536)
    cfg = dict(type='VisionTransformer', arch=no_scale, img_size=28, patch_size=14,
               out_type='cls_token', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model = build_backbone(cfg)
    with pytest.raises(CheckpointMismatchError) as info:
        model.init_weights()
    message = str(info.value)
    assert '24 unexpected' in message and 'layers.0.attn.gamma1.weight' in message
    assert 'layer scale' in message and 'layer_scale_init_value' in message
    # an arch named dinov2-* builds what DINOv2 is (layer scale included): exact
    model = build_backbone(dict(cfg, arch='dinov2-small')).eval()
    model.init_weights()
    with torch.no_grad():
        torch.testing.assert_close(model(X[:, :, :28, :28])[-1],
                                   ref.forward_features(X[:, :, :28, :28])[:, 0])


# ----- named exceptions ------------------------------------------------------------------------
def test_classifier_head_and_decode_head_are_named_not_refused(tiny_resnet):
    model = tiny_resnet()
    sd = dict(model.state_dict())
    sd.update({'fc.weight': torch.zeros(10, 512), 'decode_head.conv_seg.weight': torch.zeros(1)})
    fit = check_state_dict_fits(tiny_resnet(), sd)
    assert not fit.refused and not fit.missing and not fit.dropped
    assert fit.notes == ['2 tensors outside the backbone (classifier heads, necks, training-only '
                         'tokens), ignored: fc, decode_head.conv_seg']


def test_plugins_added_on_top_load_and_are_named(tmp_path):
    plain = build_backbone(dict(type='ResNet', depth=50, base_channels=8, stem_channels=8))
    path = tmp_path / 'plain.pth'
    torch.save(plain.state_dict(), path)
    model = build_backbone(dict(type='ResNet', depth=50, base_channels=8, stem_channels=8,
                                plugins=[dict(cfg=dict(type='ContextBlock', ratio=1 / 4),
                                              position='after_conv3',
                                              stages=(False, False, False, True))]))
    report = load_checkpoint(model, str(path), logger='silent')
    assert torch.equal(model.layer4[0].conv3.weight, plain.layer4[0].conv3.weight)
    note = next(n for n in report.notes if 'mmdet block plugins' in n)
    assert 'layer4.0' in note or 'layer4.0.context_block' in note
    with pytest.raises(CheckpointMismatchError, match='strict=True'):
        load_checkpoint(model, str(path), strict=True, logger='silent')


def test_dcn_offsets_are_added_on_top():
    class ToyDeformConv2dPack(nn.Conv2d):  # what mmcv's DCN looks like: weight + conv_offset
        def __init__(self):
            super().__init__(4, 4, 3)
            self.conv_offset = nn.Conv2d(4, 18, 3)

    class Net(nn.Module):
        def __init__(self, dcn):
            super().__init__()
            self.conv = ToyDeformConv2dPack() if dcn else nn.Conv2d(4, 4, 3)

    fit = check_state_dict_fits(Net(True), Net(False).state_dict())
    assert not fit.refused
    assert fit.notes == ["2 tensors added on top of the checkpoint's architecture, left as "
                         "initialised (mmcv DCN offsets): conv.conv_offset"]


def test_intermediate_output_norms_and_unbuilt_stages_are_named(csp53):
    ref, path = csp53
    model = build_backbone(dict(type='CSPDarkNet', depth=53, out_indices=(1,)))
    report = load_checkpoint(model, path, logger='silent')
    note = next(n for n in report.notes if 'not built' in n)
    assert 'stages.2' in note and 'stages.4' in note
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(X)[0],
                                   ref.forward_intermediates(X, intermediates_only=True)[2])
    # Swin: a classification checkpoint has norm3 only; norm0..2 of out_indices are ours
    swin = build_backbone(dict(type='SwinTransformer', arch='tiny', out_indices=(0, 1, 2, 3)))
    sd = {k: v for k, v in swin.state_dict().items() if not k.startswith(('norm0', 'norm1'))}
    fit = check_state_dict_fits(swin, sd)
    assert not fit.refused
    assert any('output norms' in n and 'norm0, norm1' in n for n in fit.notes)
    # without the last norm in the checkpoint, nothing says the others were added on top
    sd = {k: v for k, v in sd.items() if not k.startswith(('norm2', 'norm3'))}
    assert check_state_dict_fits(swin, sd, raise_error=False).refused


def test_a_deeper_checkpoint_is_not_a_truncated_one(tmp_path, tiny_resnet):
    # ResNet-34's extra blocks in layer1..4 would be dropped: refused (not "stages not built")
    with pytest.raises(CheckpointMismatchError, match='layer1.2'):
        check_state_dict_fits(tiny_resnet(18), tiny_resnet(34).state_dict())


# ----- strict -------------------------------------------------------------------------------------
def test_partial_checkpoint_refused_by_default_loaded_with_strict_false(tmp_path, tiny_resnet):
    full = tiny_resnet().state_dict()
    sd = {k: v for k, v in full.items() if not k.startswith('layer4.1.')}
    path = tmp_path / 'partial.pth'
    torch.save(sd, path)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = _snapshot(model)
    with pytest.raises(CheckpointMismatchError, match=r'10 missing .*layer4\.1\.conv1\.weight'):
        model.init_weights()
    assert _unchanged(model, before)
    model = tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path), strict=False))
    model.init_weights()
    assert torch.equal(model.layer4[0].conv1.weight, full['layer4.0.conv1.weight'])
    report = load_checkpoint(model, str(path), strict=False, logger='silent')
    assert any(n.startswith('strict=False: loaded although 10 missing') for n in report.notes)
    with pytest.raises(TypeError, match="strict must be None .* got 'no'"):
        tiny_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                  strict='no')).init_weights()


def test_convert_model_refuses_a_half_load_unless_non_strict(tmp_path, tiny_resnet, capsys):
    full = tiny_resnet().state_dict()
    src = tmp_path / 'partial.pth'
    torch.save({k: v for k, v in full.items() if not k.startswith('layer3.0.')}, src)
    model = '{"type": "ResNet", "depth": 18}'
    with pytest.raises(CheckpointMismatchError, match='layer3.0'):
        convert_checkpoint(str(src), str(tmp_path / 'a.safetensors'), model=model)
    assert not (tmp_path / 'a.safetensors').exists()
    assert cli_main(['convert', str(src), str(tmp_path / 'b.safetensors'), '--model', model]) == 2
    assert 'missing' in capsys.readouterr().err
    assert not (tmp_path / 'b.safetensors').exists()
    assert cli_main(['convert', str(src), str(tmp_path / 'c.safetensors'), '--model', model,
                     '--non-strict']) == 0
    assert 'strict=False: loaded although' in capsys.readouterr().out


def test_cli_checkpoint_uses_the_rule(tmp_path, capsys, csp53):
    _, path = csp53
    config = tmp_path / 'csp.py'
    config.write_text("model = dict(backbone=dict(type='CSPDarkNet', depth=53))\n")
    args = ['info', str(config), '--no-flops', '--no-memory', '--input-size', '32', '32',
            '--checkpoint', path]
    assert cli_main(args) == 0  # converted and exact (the classifier is the converter's)
    capsys.readouterr()
    partial = tmp_path / 'partial.pth'
    sd = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in sd.items() if not k.startswith('stages.4.')}, partial)
    assert cli_main(args[:-1] + [str(partial)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'stages.4.downsample_conv.conv.weight' in err
    assert '--non-strict' in err


def test_declared_additions_and_prefix_hint(tiny_resnet):
    class Adapted(nn.Module):
        checkpoint_additions = {'adapter': 'an adapter of ours'}

        def __init__(self):
            super().__init__()
            self.body = nn.Linear(2, 2)
            self.adapter = nn.Linear(2, 2)

    fit = check_state_dict_fits(Adapted(), {'body.weight': torch.zeros(2, 2),
                                            'body.bias': torch.zeros(2)})
    assert not fit.refused and 'an adapter of ours' in fit.notes[0]
    # an mmseg-style file without prefix='backbone': refused, and the message says what to pass
    sd = {f'backbone.{k}': v for k, v in tiny_resnet().state_dict().items()}
    sd['decode_head.conv_seg.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match="pass prefix='backbone'"):
        check_state_dict_fits(tiny_resnet(), sd)
