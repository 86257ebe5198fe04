"""detectron2's backbone contract, tested without detectron2 (the stand-in tier; tests/detectron2/
runs the same paths against the real detectron2 and detrex).

detectron2 is not installed here. What is exercised: the adapter's dict outputs, ``output_shape()``
consumed by a detrex-style neck, ``size_divisibility``/``padding_constraints``, the builders'
naming and behaviour in a stand-in ``BACKBONE_REGISTRY``, and (with a stand-in ``detectron2``
package in ``sys.modules``) the lazy paths that subclass ``Backbone`` and wrap the FPN builders.
What is not: detectron2's real ``Backbone``, ``FPN`` and training loop.
"""
import importlib
import math
import sys
import types
from dataclasses import dataclass
from typing import Optional

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone
from mmbackbones.integrations import detectron2 as d2i
from mmbackbones.models.base import ShapeSpec
from tests.toy_backbone import ToyBackbone  # (8, 16, 32) at strides 4, 8, 16: stage1..3

pytestmark = pytest.mark.usefixtures('toy_registered')  # ToyBackbone by type name


class ChannelMapper(nn.Module):
    """A detrex-style neck: everything it knows about its input comes from output_shape()."""

    def __init__(self, input_shapes, in_features, out_channels=8):
        super().__init__()
        self.in_features = list(in_features)
        self.convs = nn.ModuleList(nn.Conv2d(input_shapes[f].channels, out_channels, 1)
                                   for f in self.in_features)
        self.strides = [input_shapes[f].stride for f in self.in_features]

    def forward(self, feats):
        return [conv(feats[f]) for conv, f in zip(self.convs, self.in_features)]


class CfgNode(dict):
    """A stand-in for detectron2's CfgNode (a dict with attribute access)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


class FakeRegistry:
    """The part of detectron2's (fvcore's) Registry that register_all uses."""

    def __init__(self):
        self._obj_map = {}

    def register(self, obj=None):
        if obj is None:
            return self.register
        assert obj.__name__ not in self._obj_map, f'{obj.__name__} registered twice'
        self._obj_map[obj.__name__] = obj
        return obj

    def __contains__(self, name):
        return name in self._obj_map

    def get(self, name):
        return self._obj_map[name]


def _hide_detectron2(monkeypatch):
    """``import detectron2`` (and of any submodule, even one imported already) raises."""
    for name in [n for n in sys.modules if n == 'detectron2' or n.startswith('detectron2.')]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, 'detectron2', None)


@pytest.fixture
def no_detectron2(monkeypatch):
    _hide_detectron2(monkeypatch)


def _reload_contract():
    """Re-import the modules that look detectron2 up once, at import."""
    from mmbackbones.integrations.detectron2 import backbones, contract
    importlib.reload(contract)
    importlib.reload(backbones)
    return contract, backbones


@pytest.fixture
def reloaded_without_detectron2(monkeypatch):
    """The contract modules as imported where detectron2 is absent (restored afterwards)."""
    _hide_detectron2(monkeypatch)
    yield _reload_contract()
    monkeypatch.undo()
    _reload_contract()


@pytest.fixture
def fake_detectron2(monkeypatch):
    """Just enough of detectron2 for the contract: Backbone, ShapeSpec, the registry, FPN (the
    contract modules are re-imported with it, and again after it)."""

    @dataclass
    class FakeShapeSpec:
        channels: Optional[int] = None
        height: Optional[int] = None
        width: Optional[int] = None
        stride: Optional[int] = None

    class Backbone(nn.Module):
        @property
        def size_divisibility(self):
            return 0

    class LastLevelMaxPool(nn.Module):
        num_levels = 1

    class FPN(Backbone):
        def __init__(self, bottom_up, in_features, out_channels, norm='', top_block=None,
                     fuse_type='sum'):
            super().__init__()
            assert isinstance(bottom_up, Backbone)  # as detectron2's FPN insists
            shapes = bottom_up.output_shape()
            self.bottom_up, self.in_features = bottom_up, in_features
            self.lateral = nn.ModuleList(nn.Conv2d(shapes[f].channels, out_channels, 1)
                                         for f in in_features)
            strides = [shapes[f].stride for f in in_features] + [shapes[in_features[-1]].stride * 2]
            self._out_features = [f'p{int(math.log2(s))}' for s in strides]

        def forward(self, x):
            feats = self.bottom_up(x)
            outs = [conv(feats[f]) for conv, f in zip(self.lateral, self.in_features)]
            for i in range(len(outs) - 1, 0, -1):
                outs[i - 1] = outs[i - 1] + nn.functional.interpolate(outs[i], scale_factor=2)
            outs.append(nn.functional.max_pool2d(outs[-1], 1, stride=2))
            return dict(zip(self._out_features, outs))

    registry = FakeRegistry()
    pkg = types.ModuleType('detectron2')
    layers = types.ModuleType('detectron2.layers')
    layers.ShapeSpec = FakeShapeSpec
    modeling = types.ModuleType('detectron2.modeling')
    modeling.Backbone, modeling.BACKBONE_REGISTRY = Backbone, registry
    backbone_pkg = types.ModuleType('detectron2.modeling.backbone')
    fpn_mod = types.ModuleType('detectron2.modeling.backbone.fpn')
    fpn_mod.FPN, fpn_mod.LastLevelMaxPool = FPN, LastLevelMaxPool
    pkg.layers, pkg.modeling, modeling.backbone, backbone_pkg.fpn = layers, modeling, \
        backbone_pkg, fpn_mod
    for name, mod in [('detectron2', pkg), ('detectron2.layers', layers),
                      ('detectron2.modeling', modeling),
                      ('detectron2.modeling.backbone', backbone_pkg),
                      ('detectron2.modeling.backbone.fpn', fpn_mod)]:
        monkeypatch.setitem(sys.modules, name, mod)
    _reload_contract()
    yield types.SimpleNamespace(Backbone=Backbone, ShapeSpec=FakeShapeSpec, FPN=FPN,
                                registry=registry)
    monkeypatch.undo()
    _reload_contract()


def d2_cfg(type_='ToyBackbone', **args):
    cfg = CfgNode(MODEL=CfgNode(FPN=CfgNode(IN_FEATURES=[], OUT_CHANNELS=8, NORM='',
                                            FUSE_TYPE='sum')))
    d2i.add_mmbackbones_config(cfg)
    cfg.MODEL.MMBACKBONES.TYPE = type_
    cfg.MODEL.MMBACKBONES.ARGS.update(args)
    return cfg


# ----- the contract on our own modules -----------------------------------------------------------
def test_every_backbone_exposes_the_contract():
    toy = ToyBackbone()
    shapes = toy.output_shape()
    assert shapes == {'stage1': ShapeSpec(channels=8, stride=4),
                      'stage2': ShapeSpec(channels=16, stride=8),
                      'stage3': ShapeSpec(channels=32, stride=16)}
    assert toy.size_divisibility == 0
    feats = toy.forward_dict(torch.randn(1, 3, 64, 64))
    neck = ChannelMapper(shapes, ['stage2', 'stage3'])
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 8, 8, 8), (1, 8, 4, 4)]
    assert neck.strides == [8, 16]


def test_adapter_dict_outputs_and_output_shape(no_detectron2):
    assert not d2i.detectron2_available()
    adapter = d2i.Detectron2Backbone(dict(type='ToyBackbone'),
                                     rename={'stage1': 'res2', 'stage2': 'res3', 'stage3': 'res4'},
                                     out_features=['res3', 'res4'])
    assert isinstance(adapter, nn.Module)
    shapes = adapter.output_shape()
    assert list(shapes) == ['res3', 'res4']
    assert (shapes['res3'].channels, shapes['res3'].stride) == (16, 8)
    assert (shapes['res4'].channels, shapes['res4'].stride) == (32, 16)
    assert adapter._out_feature_strides == {'res3': 8, 'res4': 16}
    x = torch.randn(2, 3, 64, 64)
    out = adapter(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {'res3': (2, 16, 8, 8),
                                                           'res4': (2, 32, 4, 4)}
    # The adapter returns exactly the wrapped backbone's tensors.
    torch.testing.assert_close(out['res4'], adapter.backbone(x)[2])
    neck = ChannelMapper(shapes, ['res3', 'res4'])
    assert [tuple(o.shape) for o in neck(out)] == [(2, 8, 8, 8), (2, 8, 4, 4)]
    sum(o.sum() for o in neck(out)).backward()
    assert adapter.backbone.stages[2][0].weight.grad is not None


def test_size_divisibility_and_padding_constraints(no_detectron2):
    toy = d2i.Detectron2Backbone(ToyBackbone())
    assert toy.size_divisibility == 0 and toy.padding_constraints == {}
    fixed = d2i.Detectron2Backbone(ToyBackbone(), size_divisibility=32)
    assert fixed.size_divisibility == 32
    assert fixed.padding_constraints == {'size_divisibility': 32}
    pyramid = build_backbone(dict(type='ToyBackbone'),
                             neck=dict(type='FPN', out_channels=8, num_outs=4))
    adapted = d2i.Detectron2Backbone(pyramid)
    assert adapted.size_divisibility == 32  # the coarsest pyramid level, as detectron2's FPN
    assert list(adapted.output_shape()) == ['p2', 'p3', 'p4', 'p5']
    out = adapted(torch.randn(1, 3, 64, 64))
    assert {k: v.shape[-1] for k, v in out.items()} == {'p2': 16, 'p3': 8, 'p4': 4, 'p5': 2}


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(out_features=['res9']), KeyError, r"available: \['stage1', 'stage2', 'stage3'\]"),
    (dict(out_features='stage1'), TypeError, 'out_features'),
    (dict(rename={'stage7': 'res2'}), KeyError, 'stage7'),
    (dict(rename={'stage1': 'x', 'stage2': 'x'}), ValueError, 'two outputs'),
    (dict(size_divisibility=-4), ValueError, 'size_divisibility'),
])
def test_adapter_errors(no_detectron2, kwargs, error, match):
    with pytest.raises(error, match=match):
        d2i.Detectron2Backbone(ToyBackbone(), **kwargs)


def test_adapter_refuses_a_plain_module(no_detectron2):
    with pytest.raises(TypeError, match='out_names'):
        d2i.Detectron2Backbone(nn.Conv2d(3, 8, 3))


# ----- register_all -------------------------------------------------------------------------------
def test_register_all_needs_detectron2_or_a_registry(no_detectron2):
    with pytest.raises(ImportError, match='detectron2 is not installed'):
        d2i.register_all()
    with pytest.raises(TypeError, match='register'):
        d2i.register_all(registry=object(), timm_models=None)


def test_register_all_naming(no_detectron2):
    registry = FakeRegistry()
    names = d2i.register_all(registry, timm_models=['resnet18', 'convnext_atto'])
    assert set(names) == set(registry._obj_map)
    # detectron2_timm's naming for timm models
    for n in ('build_resnet18_backbone', 'build_resnet18_fpn_backbone',
              'build_convnext_atto_backbone', 'build_convnext_atto_fpn_backbone'):
        assert n in registry
    # ours: a generic pair and one pair per registered backbone type
    assert 'build_mmbackbones_backbone' in registry
    assert 'build_mmbackbones_fpn_backbone' in registry
    assert 'build_mmbackbones_toybackbone_backbone' in registry
    assert 'build_mmbackbones_toybackbone_fpn_backbone' in registry
    assert not any('backbonewithneck' in n for n in names)  # a wrapper, not a backbone type
    assert all(n.startswith('build_') and n.endswith('_backbone') for n in names)
    assert registry.get('build_resnet18_backbone').__name__ == 'build_resnet18_backbone'
    # Idempotent: a second call finds every name taken and registers nothing.
    assert d2i.register_all(registry, timm_models=['resnet18', 'convnext_atto']) == []
    with pytest.raises(KeyError, match='not_a_timm_model'):
        d2i.register_all(FakeRegistry(), timm_models=['not_a_timm_model'])


def test_register_all_every_timm_model(no_detectron2):
    import timm
    registry = FakeRegistry()
    d2i.register_all(registry, timm_models='all', native=False)
    assert len(registry._obj_map) == 2 * len(timm.list_models())
    assert 'build_vit_base_patch16_224_fpn_backbone' in registry


def test_native_builder_builds_the_adapted_backbone(no_detectron2):
    registry = FakeRegistry()
    d2i.register_all(registry, timm_models=None)
    cfg = d2_cfg(out_indices=[1, 2])
    cfg.MODEL.MMBACKBONES.RENAME.update(stage2='res3', stage3='res4')
    model = registry.get('build_mmbackbones_backbone')(cfg, ShapeSpec(channels=1))
    assert isinstance(model.backbone, ToyBackbone) and model.backbone.in_channels == 1
    assert {k: (v.channels, v.stride) for k, v in model.output_shape().items()} == {
        'res3': (16, 8), 'res4': (32, 16)}
    assert set(model(torch.randn(1, 1, 32, 32))) == {'res3', 'res4'}
    typed = registry.get('build_mmbackbones_toybackbone_backbone')(d2_cfg('ignored'), None)
    assert isinstance(typed.backbone, ToyBackbone)  # the type comes from the builder's name
    cfg.MODEL.MMBACKBONES.SIZE_DIVISIBILITY = 16
    assert registry.get('build_mmbackbones_backbone')(cfg, None).padding_constraints == {
        'size_divisibility': 16}
    with pytest.raises(ImportError, match="detectron2's FPN"):
        registry.get('build_mmbackbones_fpn_backbone')(cfg, None)
    cfg.MODEL.MMBACKBONES.TYPE = ''
    with pytest.raises(KeyError, match='MMBACKBONES.TYPE'):
        registry.get('build_mmbackbones_backbone')(cfg, None)


# ----- with a stand-in detectron2 importable ------------------------------------------------------
def test_lazy_paths_with_detectron2_importable(fake_detectron2):
    assert d2i.detectron2_available()
    adapter = d2i.Detectron2Backbone(ToyBackbone())
    assert isinstance(adapter, fake_detectron2.Backbone)  # detectron2's FPN asserts this
    spec = adapter.output_shape()['stage2']
    assert isinstance(spec, fake_detectron2.ShapeSpec) and (spec.channels, spec.stride) == (16, 8)

    names = d2i.register_all(timm_models=['resnet18'])  # default: detectron2's registry
    assert set(names) == set(fake_detectron2.registry._obj_map)
    fpn = fake_detectron2.registry.get('build_mmbackbones_fpn_backbone')(d2_cfg(), None)
    assert isinstance(fpn, fake_detectron2.FPN)
    assert fpn.in_features == ['stage1', 'stage2', 'stage3']  # all outputs by default
    outs = fpn(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in outs.items()} == {
        'p2': (1, 8, 16, 16), 'p3': (1, 8, 8, 8), 'p4': (1, 8, 4, 4), 'p5': (1, 8, 2, 2)}


# ----- real families ---------------------------------------------------------------------
def test_resnet_speaks_detectron2_names(no_detectron2):
    adapter = d2i.Detectron2Backbone(dict(type='ResNet', depth=18, out_indices=(2, 3)),
                                     out_features=['res4', 'res5'])
    assert {k: (v.channels, v.stride) for k, v in adapter.output_shape().items()} == {
        'res4': (256, 16), 'res5': (512, 32)}
    neck = ChannelMapper(adapter.output_shape(), ['res4', 'res5'])
    outs = neck(adapter(torch.randn(1, 3, 64, 64)))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 4, 4), (1, 8, 2, 2)]


def test_vit_feature_maps_through_the_adapter(no_detectron2):
    vit = dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=8,
               out_indices=(1, 3), out_type='featmap')
    adapter = d2i.Detectron2Backbone(vit, rename={'stage2': 'p_mid', 'stage4': 'p_last'})
    shapes = adapter.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        'p_mid': (192, 8), 'p_last': (192, 8)}
    out = adapter(torch.randn(1, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {'p_mid': (1, 192, 4, 4),
                                                          'p_last': (1, 192, 4, 4)}


def test_timm_builder_by_detectron2_timm_name(no_detectron2):
    """detectron2_timm's builders read its keys with its meanings: OUT_FEATURES name timm
    modules (hooked), REMAPS renames them, STRIDES are checked against the model."""
    registry = FakeRegistry()
    d2i.register_all(registry, timm_models=['resnet18'], native=False)
    cfg = CfgNode(MODEL=CfgNode(BACKBONE=CfgNode(FREEZE_AT=0)))
    d2i.add_mmbackbones_config(cfg)
    cfg.MODEL.BACKBONE.CONFIG.update(OUT_FEATURES=['layer2', 'layer3', 'layer4'],
                                     REMAPS=['res3', 'res4', 'res5'], STRIDES=[8, 16, 32],
                                     REMOVE_LAYERS=['global_pool', 'fc'])
    model = registry.get('build_resnet18_backbone')(cfg, ShapeSpec(channels=3))
    assert type(model).__name__ == 'TimmModuleBackbone'
    assert model.model_name == 'resnet18'  # the model comes from the builder's name
    assert {k: (v.channels, v.stride) for k, v in model.output_shape().items()} == {
        'res3': (128, 8), 'res4': (256, 16), 'res5': (512, 32)}
    out = model(torch.randn(1, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        'res3': (1, 128, 8, 8), 'res4': (1, 256, 4, 4), 'res5': (1, 512, 2, 2)}
    cfg.MODEL.BACKBONE.CONFIG.STRIDES = [8, 16, 16]
    with pytest.raises(ValueError, match=r"'res5' \(module 'layer4'\) is declared stride 16 "
                                         r"but has stride 32"):
        registry.get('build_resnet18_backbone')(cfg, None)
    cfg.MODEL.BACKBONE.CONFIG.update(STRIDES=[], OUT_FEATURES=['layer2', 'layer3', 'layr4'])
    with pytest.raises(KeyError, match=r"'layr4' is not a module of resnet18.*'layer4'"):
        registry.get('build_resnet18_backbone')(cfg, None)
    # detectron2_timm's keys are refused by our own builders (one meaning per key)
    native = FakeRegistry()
    d2i.register_all(native, timm_models=None)
    cfg = d2_cfg()
    cfg.MODEL.BACKBONE = CfgNode(FREEZE_AT=0, CONFIG=CfgNode(OUT_FEATURES=['stage2']))
    with pytest.raises(ValueError, match=r"CONFIG.\['OUT_FEATURES'\] are detectron2_timm's"):
        native.get('build_mmbackbones_backbone')(cfg, None)


def test_adapter_wraps_a_dict_returning_backbone(no_detectron2):
    from mmbackbones.integrations.detectron2 import BasicStem, Detectron2ResNet
    inner = Detectron2ResNet(stem=BasicStem(norm='BN'), stages=dict(depth=18, norm='BN'),
                             out_features=['res3', 'res4'])
    adapted = d2i.Detectron2Backbone(inner, rename={'res4': 'c4'}, out_features=['c4', 'res3'])
    with torch.no_grad():
        out = adapted.eval()(torch.randn(2, 3, 64, 64))
    assert list(out) == ['c4', 'res3']
    assert out['c4'].shape == (2, 256, 4, 4) and out['res3'].shape == (2, 128, 8, 8)


def test_adapter_refuses_pooled_outputs(no_detectron2):
    vit = build_backbone(dict(type='VisionTransformer', arch='deit-tiny', img_size=32,
                              patch_size=16, out_type='cls_token'))
    assert vit.out_strides == (None,)
    with pytest.raises(ValueError, match=r"output\(s\) \['.*'\] are pooled \(N, C\) vectors "
                                         r"\(stride None\)"):
        d2i.Detectron2Backbone(vit)


def test_detrex_classes_without_detectron2(reloaded_without_detectron2):
    """Without detectron2 the detrex classes still import and return dicts (our ShapeSpec)."""
    contract, backbones = reloaded_without_detectron2
    assert contract.BACKBONE_BASE is nn.Module and contract.ShapeSpec is ShapeSpec
    model = backbones.ResNet(stem=dict(norm='FrozenBN'), stages=dict(depth=18),
                             out_features=['res4', 'res5'], freeze_at=1)
    shapes = model.output_shape()
    assert isinstance(shapes['res5'], ShapeSpec) and shapes['res5'].stride == 32
    with torch.no_grad():
        assert list(model(torch.randn(1, 3, 32, 32))) == ['res4', 'res5']
