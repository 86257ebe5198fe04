"""TorchvisionBackbone: return_nodes, metadata, freezing, norms, weights (offline), errors."""
import os
import urllib.error

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

torchvision = pytest.importorskip('torchvision', reason='torchvision is optional')

from mmbackbones import build_backbone, load_config  # noqa: E402
from mmbackbones.builder import backbone_cfg_from_config  # noqa: E402
from mmbackbones.models.backbones.torchvision_backbone import (  # noqa: E402
    TorchvisionBackbone, _resolve_weights, list_torchvision_models, list_torchvision_nodes)
from tests.parity import assert_frozen_bn_matches  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
DETREX_NODES = {'layer1': 'res2', 'layer2': 'res3', 'layer3': 'res4', 'layer4': 'res5'}


def _check_outputs(model, outs, size):
    assert isinstance(outs, tuple) and len(outs) == len(model.out_channels)
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (1, c, -(-size[0] // s), -(-size[1] // s))


def _randomize_bn_stats(model):
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


# ----- outputs and metadata -----------------------------------------------------------------------
def test_detrex_return_nodes_and_metadata():
    model = build_backbone(dict(type='TorchvisionBackbone', model_name='resnet18',
                                return_nodes=DETREX_NODES))
    assert model.out_names == ('res2', 'res3', 'res4', 'res5')
    assert model.out_channels == (64, 128, 256, 512)
    assert model.out_strides == (4, 8, 16, 32)
    assert model.in_channels == 3
    assert model.in_channels == 3
    _check_outputs(model, model(torch.randn(1, 3, 64, 96)), (64, 96))
    assert list(model.eval().forward_dict(torch.randn(1, 3, 32, 32))) == list(model.out_names)


def test_resnet_default_nodes_and_output_order_follows_return_nodes():
    assert TorchvisionBackbone('resnet18').out_names == ('res2', 'res3', 'res4', 'res5')
    model = TorchvisionBackbone('resnet18', return_nodes={'layer4': 'c5', 'layer2': 'c3'})
    assert model.out_names == ('c5', 'c3') and model.out_strides == (32, 8)
    outs = model(torch.randn(1, 3, 64, 64))
    assert outs[0].shape == (1, 512, 2, 2) and outs[1].shape == (1, 128, 8, 8)


def test_list_return_nodes_name_outputs_after_nodes():
    model = TorchvisionBackbone('mobilenet_v3_small', return_nodes=['features.1', 'features.8'])
    assert model.out_names == ('features.1', 'features.8')
    assert model.out_strides == (4, 16) and model.out_channels == (16, 48)
    _check_outputs(model, model(torch.randn(1, 3, 64, 96)), (64, 96))
    # nothing after the last node is kept (no unused parameters)
    assert not any(n.startswith(('classifier', 'features.12')) for n, _ in
                   model.named_parameters())


def test_channels_last_swin_outputs_are_nchw():
    model = TorchvisionBackbone('swin_t', return_nodes=['features.1', 'features.3'])
    assert model.out_channels == (96, 192) and model.out_strides == (4, 8)
    _check_outputs(model, model(torch.randn(1, 3, 64, 96)), (64, 96))


# ----- freezing and norms -------------------------------------------------------------------------
def _frozen(module):
    return all(not p.requires_grad for p in module.parameters())


def _trainable(module):
    return all(p.requires_grad for p in module.parameters())


def test_frozen_stages_stem_and_first_stages():
    model = TorchvisionBackbone('resnet18', frozen_stages=1).train()
    body = model.model
    assert _frozen(body.conv1) and _frozen(body.bn1) and _frozen(body.layer1)
    assert _trainable(body.layer2) and _trainable(body.layer4)
    assert not body.bn1.training and not body.get_submodule('layer1.0.bn1').training
    assert body.get_submodule('layer2.0.bn1').training
    stem_only = TorchvisionBackbone('resnet18', frozen_stages=0).train()
    assert _frozen(stem_only.model.conv1) and _trainable(stem_only.model.layer1)
    assert len(stem_only.stem_and_stages()) == 5


def test_norm_eval_keeps_batchnorms_in_eval_mode():
    model = TorchvisionBackbone('resnet18', norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(bn.training for bn in bns) and _trainable(model)


def test_frozen_bn_matches_eval_mode_batchnorm():
    ref = TorchvisionBackbone('resnet18')
    _randomize_bn_stats(ref)
    assert_frozen_bn_matches(ref, TorchvisionBackbone('resnet18', norm_layer='FrozenBN'))


def test_norm_layer_class_is_passed_to_the_builder():
    from torchvision.ops.misc import FrozenBatchNorm2d as TVFrozenBN
    model = TorchvisionBackbone('resnet18', norm_layer=TVFrozenBN, return_nodes=['layer1'])
    assert isinstance(model.model.bn1, TVFrozenBN)
    model = TorchvisionBackbone('resnet18', norm_layer='SyncBN', return_nodes=['layer1'])
    assert isinstance(model.model.bn1, nn.SyncBatchNorm)


# ----- weights ------------------------------------------------------------------------------------
def test_weights_names_resolve():
    enum = torchvision.models.ResNet50_Weights
    assert _resolve_weights('resnet50', None, False) is None
    assert _resolve_weights('resnet50', None, True) is enum.DEFAULT
    assert _resolve_weights('resnet50', 'DEFAULT', False) is enum.DEFAULT
    assert _resolve_weights('resnet50', 'IMAGENET1K_V2', False) is enum.IMAGENET1K_V2
    assert _resolve_weights('resnet50', 'ResNet50_Weights.IMAGENET1K_V1', False) is \
        enum.IMAGENET1K_V1
    assert _resolve_weights('resnet50', enum.IMAGENET1K_V1, False) is enum.IMAGENET1K_V1


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """An empty torch hub cache and no network (a download fails at once)."""
    hub = tmp_path / 'hub'
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))

    def no_download(*args, **kwargs):
        raise urllib.error.URLError('network disabled in this test')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_download)
    return hub


def test_weights_without_network_name_url_and_cache_path(offline_hub):
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    with pytest.raises(RuntimeError) as info:
        TorchvisionBackbone('resnet18', pretrained=True)
    message = str(info.value)
    assert url in message
    assert os.path.join(str(offline_hub), 'checkpoints', os.path.basename(url)) in message


def test_weights_file_placed_in_the_hub_cache_loads_offline(offline_hub):
    source = torchvision.models.resnet18().eval()
    _randomize_bn_stats(source)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    os.makedirs(offline_hub / 'checkpoints')
    torch.save(source.state_dict(), offline_hub / 'checkpoints' / os.path.basename(url))
    model = TorchvisionBackbone('resnet18', weights='IMAGENET1K_V1',
                                return_nodes={'layer4': 'res5'}).eval()
    assert model.is_init
    x = torch.randn(1, 3, 64, 64)
    expected = source.layer4(source.layer3(source.layer2(source.layer1(source.maxpool(
        source.relu(source.bn1(source.conv1(x))))))))
    torch.testing.assert_close(model(x)[0], expected)


# ----- errors -------------------------------------------------------------------------------------
def test_wrong_node_name_lists_closest_valid_names():
    with pytest.raises(ValueError) as info:
        TorchvisionBackbone('resnet18', return_nodes={'layer5': 'x', 'layer2': 'y'})
    message = str(info.value)
    assert "'layer5'" in message and "'layer4'" in message
    assert "list_torchvision_nodes('resnet18')" in message
    assert "'layer2' (closest" not in message  # valid nodes are not reported


@pytest.mark.parametrize('kwargs, error, pattern', [
    (dict(model_name='resnet5O'), ValueError, r"'resnet5O' is not a torchvision model.*'resnet50'"),
    (dict(model_name=50), TypeError, 'model_name must be'),
    (dict(model_name='resnet18', weights='IMAGENET1K_V9'), ValueError,
     r"weights='IMAGENET1K_V9'.*'IMAGENET1K_V1'"),
    (dict(model_name='resnet18', weights='DEFAULT', pretrained=True), ValueError, 'not both'),
    (dict(model_name='resnet18', pretrained='yes'), TypeError, 'pretrained must be a bool'),
    (dict(model_name='resnet18', return_nodes=[]), TypeError, 'return_nodes must be'),
    (dict(model_name='resnet18', return_nodes=['layer1', 'layer1']), ValueError, 'repeat'),
    (dict(model_name='resnet18', return_nodes={'layer1': 'a', 'layer2': 'a'}), ValueError,
     'unique'),
    (dict(model_name='resnet18', return_nodes=3), TypeError, 'return_nodes must be'),
    (dict(model_name='mobilenet_v3_small'), ValueError, 'return_nodes is required'),
    (dict(model_name='resnet18', frozen_stages=5), ValueError, r'frozen_stages must be in -1\.\.4'),
    (dict(model_name='resnet18', norm_layer='NoSuchNorm'), ValueError, 'norm_layer'),
    (dict(model_name='resnet18', norm_eval=1), TypeError, 'norm_eval must be a bool'),
    (dict(model_name='resnet18', not_an_arg=1), TypeError, 'does not accept.*not_an_arg'),
])
def test_bad_arguments_name_the_argument(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        TorchvisionBackbone(**kwargs)


def test_listing_helpers():
    nodes = list_torchvision_nodes('resnet18')
    assert 'layer1.0.conv1' in nodes and nodes[0] == 'x'
    names = list_torchvision_models('resnet')
    assert 'resnet50' in names and all('resnet' in n for n in names)
    assert 'fasterrcnn_resnet50_fpn' not in list_torchvision_models()


@pytest.mark.parametrize('name', sorted(os.listdir(os.path.join(REPO, 'configs', 'torchvision'))))
def test_torchvision_configs_build(name):
    cfg = backbone_cfg_from_config(load_config(os.path.join(REPO, 'configs', 'torchvision', name)))
    with torch.device('meta'):  # structure and metadata only
        model = build_backbone(cfg)
    assert isinstance(model, TorchvisionBackbone)
    assert model.out_strides == (4, 8, 16, 32)
    assert model.in_channels == 3


def test_input_size_a_model_refuses_raises_a_value_error_about_the_input():
    with torch.device('meta'):  # ViT-B/16: structure only, the size check runs before any op
        model = TorchvisionBackbone('vit_b_16', return_nodes=['encoder.layers.encoder_layer_0'])
    assert model.out_channels == (768, ) and model.out_strides == (None, )
    with pytest.raises(ValueError, match=r"'vit_b_16' cannot run on an input of size \(64, 96\)"):
        model(torch.empty(1, 3, 64, 96, device='meta'))
