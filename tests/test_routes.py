"""Data never runs code: every route by which a config reaches our registries builds only
registered types. Each case gives a ``type`` that mmengine's ``Registry.get`` would import and
call (``os.system``, ``subprocess.run``) and proves with a marker file that nothing ran, and
with a package that writes a marker when imported that nothing was imported."""
import collections
import json
import os
import sys

import pytest
from mmengine.registry import MODELS as ROOT
from mmengine.registry import DefaultScope, Registry

from mmbackbones import MODELS, build_backbone, build_backbone_from_config
from mmbackbones.registry import MMCLS_MODELS, TIMM_MODELS, UnknownTypeError
from tests.cli_helpers import assert_file_refused, assert_one_line_error, run_cli


@pytest.fixture
def marker(tmp_path):
    return tmp_path / 'MARKER'


def evil_types(marker):
    """``(type, arguments)`` that would create ``marker`` if they were called."""
    command = f'touch {marker}'
    return [
        ('os.system', dict(command=command)),
        ('subprocess.run', dict(args=['touch', str(marker)])),
        ('mmcls.subprocess.run', dict(args=['touch', str(marker)])),
        ('mmbackbones.os.system', dict(command=command)),
        ('mmcls.os.system', dict(command=command)),
    ]


@pytest.fixture
def trap_package(tmp_path, monkeypatch):
    """A package on sys.path that writes a marker when imported (its name is unique)."""
    name = f'routes_trap_{os.getpid()}'
    folder = tmp_path / 'site' / name
    folder.mkdir(parents=True)
    flag = tmp_path / 'IMPORTED'
    (folder / '__init__.py').write_text(f'open({str(flag)!r}, "w").close()\n')
    (folder / 'registry.py').write_text(f'open({str(flag)!r}, "w").close()\n')
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    yield name, flag
    for module in [m for m in sys.modules if m == name or m.startswith(name + '.')]:
        del sys.modules[module]


@pytest.fixture
def host_registry():
    """A downstream library's registry (as mmdet's): a child of mmengine's root, removed after."""
    scope = 'routes_test_host'
    registry = Registry('model', parent=ROOT, scope=scope)
    yield registry
    ROOT.children.pop(scope, None)


def _refused(build, type_name, kwargs, marker):
    with pytest.raises(KeyError) as info:
        build(dict(type=type_name, **kwargs))
    assert type_name.split('.')[-1] in str(info.value) and 'registered' in str(info.value) \
        or type_name in str(info.value), str(info.value)
    assert not marker.exists()
    return str(info.value)


def test_build_backbone_refuses_dotted_paths(marker):
    for type_name, kwargs in evil_types(marker):
        message = _refused(build_backbone, type_name, kwargs, marker)
        assert type_name.split('.', 1)[-1] in message or type_name in message


def test_registry_build_and_get_refuse_dotted_paths(marker):
    for registry in (MODELS, MMCLS_MODELS):
        for type_name, kwargs in evil_types(marker):
            _refused(registry.build, type_name, kwargs, marker)
            with pytest.raises(KeyError):
                registry.get(type_name)
            assert type_name not in registry
    assert not marker.exists()


def test_timm_scope_refuses_dotted_paths(marker):
    pytest.importorskip('timm')
    with pytest.raises(KeyError, match='os.system'):
        TIMM_MODELS.build(dict(type='os.system', command=f'touch {marker}'))
    with pytest.raises(KeyError, match='os.system'):
        build_backbone(dict(type='timm.os.system', command=f'touch {marker}'))
    assert not marker.exists()


def test_a_class_that_is_not_a_module_is_refused():
    with pytest.raises(KeyError, match='collections.OrderedDict'):
        build_backbone(dict(type='collections.OrderedDict'))
    for value in (collections.OrderedDict, os.system, print, 3):
        with pytest.raises(TypeError, match='nn.Module subclass'):
            build_backbone(dict(type=value))
        with pytest.raises(TypeError, match='nn.Module subclass'):
            MODELS.build(dict(type=value))


def test_nothing_is_imported_for_an_unknown_scope(trap_package):
    name, flag = trap_package
    for cfg in (dict(type=f'{name}.Anything'), dict(type=f'mmcls.{name}.Anything'),
                dict(type=f'mmbackbones.{name}'), dict(type='ResNet', _scope_=name)):
        with pytest.raises(KeyError, match=name):
            build_backbone(cfg)
    with pytest.raises(KeyError, match=name):
        MODELS.get(name)  # an unscoped unknown name: mmengine would import it
    assert name not in MODELS
    assert not flag.exists() and name not in sys.modules


def test_a_host_library_config_reaches_only_registered_types(marker, host_registry, trap_package):
    """mmdet/mmseg configs reach us as ``mmcls.X``/``mmbackbones.X``/``timm.X`` through their
    own registry (a plain mmengine one): our scopes refuse what is not registered."""
    name, flag = trap_package
    cases = [t for t in evil_types(marker) if t[0].startswith(('mmcls.', 'mmbackbones.'))]
    cases.append((f'mmcls.{name}.X', {}))
    with DefaultScope.overwrite_default_scope(host_registry.scope):
        for type_name, kwargs in cases:
            with pytest.raises(KeyError):
                host_registry.build(dict(type=type_name, **kwargs))
        assert type(host_registry.build(dict(type='mmbackbones.ResNet', depth=18))).__name__ \
            == 'ResNet'
    assert not marker.exists() and not flag.exists()


def _write_configs(folder, marker, type_name='os.system'):
    backbone = dict(type=type_name, command=f'touch {marker}')
    paths = {}
    paths['json'] = folder / 'evil.json'
    paths['json'].write_text(json.dumps(dict(model=dict(backbone=backbone))))
    paths['yaml'] = folder / 'evil.yaml'
    paths['yaml'].write_text(f'backbone:\n  type: {type_name}\n  command: touch {marker}\n')
    paths['py'] = folder / 'evil.py'
    paths['py'].write_text(f'model = dict(backbone={backbone!r})\n')
    return paths


@pytest.mark.parametrize('kind', ['json', 'yaml', 'py'])
def test_config_files_build_only_registered_types(tmp_path, marker, kind):
    path = _write_configs(tmp_path, marker)[kind]
    with pytest.raises(KeyError, match='os.system'):
        build_backbone_from_config(path)
    assert not marker.exists()


def test_yaml_python_tags_are_refused_before_mmengine_reads_the_file(tmp_path, marker):
    assert_file_refused(tmp_path / 'tag.yaml',
                        f'model: !!python/object/apply:os.system ["touch {marker}"]\n',
                        build_backbone_from_config, 'tag.yaml')
    assert_file_refused(tmp_path / 'child.py',
                        "_base_ = ['./tag.yaml']\nbackbone = dict(type='ResNet', depth=18)\n",
                        build_backbone_from_config, 'tag.yaml')
    assert not marker.exists()


def test_cli_routes_refuse_dotted_paths(tmp_path, marker):
    from mmbackbones.checkpoint import save_file
    import torch

    paths = _write_configs(tmp_path, marker)
    result = run_cli('info', paths['json'], '--no-flops', '--no-memory')
    assert_one_line_error(result, 'os.system')
    result = run_cli('export', paths['yaml'], '-o', tmp_path / 'x.onnx')
    assert_one_line_error(result, 'os.system')
    demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'demo', 'demo.png')
    result = run_cli('show', paths['json'], demo, '-o', tmp_path / 'x.png')
    assert_one_line_error(result, 'os.system')
    src = tmp_path / 'src.safetensors'
    save_file({'conv1.weight': torch.zeros(1)}, str(src))
    model = json.dumps(dict(type='mmcls.subprocess.run', args=['touch', str(marker)]))
    result = run_cli('convert', src, tmp_path / 'out.safetensors', '--model', model)
    assert_one_line_error(result, 'subprocess.run')
    assert not marker.exists() and not (tmp_path / 'out.safetensors').exists()


def test_registered_types_still_build_every_way(tmp_path):
    cfg = dict(type='ResNet', depth=18, out_indices=(3,))
    for spelling in ('ResNet', 'mmbackbones.ResNet', 'mmcls.ResNet'):
        assert type(build_backbone(dict(cfg, type=spelling))).__name__ == 'ResNet'
        assert type(MODELS.build(dict(cfg, type=spelling))).__name__ == 'ResNet'
    resnet = MODELS.get('ResNet')
    assert isinstance(build_backbone(dict(cfg, type=resnet)), resnet)
    path = tmp_path / 'ok.yaml'
    path.write_text('backbone:\n  type: ResNet\n  depth: 18\n  out_indices: [3]\n')
    assert build_backbone_from_config(path).out_indices == (3,)


SMALL_CONVNEXT = dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1, 1], channels=[8, 8, 8, 8]))


@pytest.mark.parametrize('argument,base', [
    ('norm_cfg', dict(type='ResNet', depth=18)), ('conv_cfg', dict(type='ResNet', depth=18)),
    ('init_cfg', dict(type='ResNet', depth=18)), ('act_cfg', SMALL_CONVNEXT)])
def test_nested_types_never_reach_an_import(marker, trap_package, host_registry, argument,
                                            base):
    """norm/act/conv/init configs go to mmcv's and mmengine's registries, which import dotted
    paths: every constructor refuses them first, on every route, naming the argument."""
    name, flag = trap_package
    for nested in (dict(type='os.system', command=f'touch {marker}'), dict(type=name),
                   dict(type=f'mmdet.{name}.x'), dict(type=f'{name}.registry.x')):
        cfg = dict(base, **{argument: nested})
        with pytest.raises(KeyError, match=argument):
            build_backbone(cfg)
        with pytest.raises(KeyError, match=argument):
            host_registry.build(dict(cfg, type=f'mmbackbones.{cfg["type"]}'))
        cls = MODELS.get(cfg['type'])
        with pytest.raises(KeyError, match=argument):
            cls(**{k: v for k, v in cfg.items() if k != 'type'})
    nested = dict(type='Kaiming', layer='Conv2d')
    inits = [nested, dict(type='subprocess.run', args=['touch', str(marker)])]
    with pytest.raises(KeyError, match=r'init_cfg\[1\] type .subprocess.run'):
        build_backbone(dict(type='ResNet', depth=18, init_cfg=inits))
    assert not marker.exists() and not flag.exists() and name not in sys.modules


def test_registered_nested_types_still_build():
    model = build_backbone(dict(SMALL_CONVNEXT, act_cfg=dict(type='GELU'),
                                norm_cfg=dict(type='LN2d', eps=1e-6)))
    assert type(model).__name__ == 'ConvNeXt'
    model = build_backbone(dict(type='ResNet', depth=18, norm_cfg=dict(type='FrozenBN'),
                                init_cfg=[dict(type='Kaiming', layer='Conv2d')]))
    model.init_weights()
    assert type(model.bn1).__name__ == 'FrozenBatchNorm2d'


@pytest.mark.parametrize('value,problem', [
    ('BN', None), ('FrozenBN', None), ('Kaiming', None), ('NoSuchNorm', None),
    ('mmdet.ResNet', None), ('mmcls.Anything', None), ('timm.resnet18', None),
    ('os.system', 'not a registry scope'), ('collections.OrderedDict', 'not a registry scope'),
    ('antigravity', 'Python module'), ('mmdet.os.system', 'dotted import path'),
    ('mmseg.subprocess', 'Python module'), (collections.OrderedDict, None)])
def test_nested_type_rules(value, problem):
    """Nested types: registered or scoped names pass (the registries answer them), an unknown
    plain name fails later as unknown; an import path or a module name never reaches mmengine."""
    from mmbackbones.utils.config_types import type_problem

    found = type_problem(value)
    assert (found is None) if problem is None else (problem in found), found
