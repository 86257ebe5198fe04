"""The host twins against the real mmdet 3.3 / mmseg 1.2 classes: the same signature (and the
recorded table of tests/compat/host_signatures.py, which the main tier checks, is right), the
type resolves from the host's own registry after ``custom_imports``, and a whole host config
switches by its backbone ``type`` alone."""
import importlib
import inspect

import pytest

from ._common import require

mmdet = require('mmdet')
mmseg = require('mmseg')

from tests.compat.host_signatures import HOST_SIGNATURES, REQUIRED  # noqa: E402


def _host_class(host, name):
    return getattr(importlib.import_module(f'{host}.models.backbones'), name)


@pytest.mark.parametrize('key', list(HOST_SIGNATURES), ids='.'.join)
def test_recorded_table_and_twin_match_the_real_host(key):
    from mmbackbones.registry import HOST_TWINS
    host, name = key
    real = [(p.name, p.kind.name, REQUIRED if p.default is p.empty else p.default)
            for p in list(inspect.signature(_host_class(host, name).__init__).parameters
                          .values())[1:]]
    assert real == HOST_SIGNATURES[key]
    twin = HOST_TWINS[host].twin(name)
    ours = [(p.name, p.kind.name, REQUIRED if p.default is p.empty else p.default)
            for p in list(inspect.signature(twin.__init__).parameters.values())[1:]]
    assert ours == real


@pytest.mark.parametrize('host,name,kwargs', [
    ('mmdet', 'ResNet', dict(depth=18)),
    ('mmdet', 'SwinTransformer', dict(embed_dims=16, num_heads=[1, 2, 2, 4])),
    ('mmseg', 'ResNetV1c', dict(depth=18)),
    ('mmseg', 'VisionTransformer', dict(img_size=32, patch_size=8, embed_dims=32, num_layers=2,
                                        num_heads=2)),
])
def test_host_registry_resolves_the_twin_after_custom_imports(host, name, kwargs):
    from mmengine.config import Config
    cfg = Config(dict(custom_imports=dict(imports=['mmbackbones'], allow_failed_imports=False),
                      backbone=dict(type=f'mmbackbones.{host}.{name}', **kwargs)))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    importlib.import_module(f'{host}.models')
    registry = importlib.import_module(f'{host}.registry').MODELS
    model = registry.build(dict(cfg.backbone, _scope_=host))
    assert type(model).__module__ == {'ResNet': 'mmbackbones.compat.resnet',
                                      'ResNetV1c': 'mmbackbones.compat.resnet',
                                      'SwinTransformer': 'mmbackbones.compat.swin',
                                      'VisionTransformer': 'mmbackbones.compat.vit'}[name]
    # with the twin's defaults, the host's own class gives the same outputs' layout
    native = registry.build(dict(kwargs, type=name, _scope_=host))
    assert len(model.out_channels) == len(native.out_indices)


@pytest.mark.parametrize('host,name', [('mmseg', 'VisionTransformer'), ('mmdet', 'ResNet'),
                                       ('mmseg', 'SwinTransformer')])
def test_host_scope_keeps_meaning_the_hosts_own_class(host, name):
    """With mmbackbones imported and its twins registered, mmengine's switch to the host's
    default scope still finds the host's own registry: a bare type is the host's class."""
    from mmengine.registry import DefaultScope

    from mmbackbones.registry import MODELS
    MODELS.get(f'mmbackbones.{host}.{name}')  # every twin registered
    importlib.import_module(f'{host}.models')
    registry = importlib.import_module(f'{host}.registry').MODELS
    real = _host_class(host, name)
    assert registry.get(name) is real
    with DefaultScope.overwrite_default_scope(host):
        with registry.switch_scope_and_registry(host) as switched:
            assert switched.get(name) is real
    kwargs = dict(depth=18) if name == 'ResNet' else {}
    assert type(registry.build(dict(type=name, _scope_=host, **kwargs))) is real
