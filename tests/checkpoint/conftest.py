import logging

import pytest
import torch


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private MMBACKBONES_HOME; returns its checkpoints/ folder."""
    home = tmp_path / 'mmb_home'
    monkeypatch.setenv('MMBACKBONES_HOME', str(home))
    return home / 'checkpoints'


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    @property
    def text(self):
        return '\n'.join(self.messages)


@pytest.fixture
def mm_log():
    """Messages mmengine's current logger receives (print_log(logger='current'))."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _Collect()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _tiny_resnet(depth=18, **kwargs):
    from mmbackbones import build_backbone
    kwargs.setdefault('out_indices', (0, 1, 2, 3))
    return build_backbone(dict(type='ResNet', depth=depth, **kwargs))


def _torchvision_features(model, x):
    """layer1..layer4 outputs of a torchvision/timm ResNet."""
    y = model.maxpool(model.act1(model.bn1(model.conv1(x)))) if hasattr(model, 'act1') else \
        model.maxpool(model.relu(model.bn1(model.conv1(x))))
    outs = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        y = layer(y)
        outs.append(y)
    return outs


def _randomize_bn(model):
    """Non-trivial BN statistics so a wrong mapping shows in the outputs."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


@pytest.fixture
def tiny_resnet():
    """Build our ResNet (out_indices 0..3 by default)."""
    return _tiny_resnet


@pytest.fixture
def ref_features():
    return _torchvision_features


@pytest.fixture
def randomize_bn():
    return _randomize_bn
