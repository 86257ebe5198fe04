"""mmdet 3.3's ``CSPDarknet`` (YOLOX), ``CSPNeXt`` (RTMDet) and ``Darknet`` (YOLOv3) against
their twins ``mmbackbones.mmdet.*`` and our cores: identical keys, equal outputs on the same
weights, ``frozen_stages``/``norm_eval`` as mmdet, mmdet's whole-detector checkpoints load."""
import warnings

import pytest
import torch
from torch import nn

from ._common import require

require('mmdet')

from mmbackbones import build_backbone  # noqa: E402
from mmbackbones.compat import MMDetCSPDarknet, MMDetCSPNeXt, MMDetDarknet  # noqa: E402
from mmbackbones.models.backbones.cspnext import CSPNeXt  # noqa: E402
from mmbackbones.models.backbones.darknet import Darknet  # noqa: E402
from mmbackbones.models.backbones.yolox_cspdarknet import YOLOXCSPDarknet  # noqa: E402
from tests.parity import assert_outputs_close, perturb_  # noqa: E402

TWINS = {'CSPDarknet': MMDetCSPDarknet, 'CSPNeXt': MMDetCSPNeXt, 'Darknet': MMDetDarknet}
CORES = {'CSPDarknet': YOLOXCSPDarknet, 'CSPNeXt': CSPNeXt, 'Darknet': Darknet}
SMALL = {'CSPDarknet': dict(deepen_factor=0.33, widen_factor=0.25),
         'CSPNeXt': dict(deepen_factor=0.167, widen_factor=0.25), 'Darknet': {}}


def _native(kind: str, **kwargs):
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type=kind, _scope_='mmdet', **kwargs))


def _pair(kind: str, **kwargs):
    kwargs = {**SMALL[kind], **kwargs}
    native = _native(kind, **kwargs)
    perturb_(native)
    ours = TWINS[kind](**kwargs)
    assert list(ours.state_dict()) == list(native.state_dict())
    ours.load_state_dict(native.state_dict(), strict=True)
    return native, ours


@pytest.mark.parametrize('kind,kwargs', [
    ('CSPDarknet', {}),
    ('CSPDarknet', dict(use_depthwise=True, out_indices=(0, 1, 2, 3, 4))),
    ('CSPDarknet', dict(arch='P6', out_indices=(2, 3, 4, 5))),
    ('CSPDarknet', dict(spp_kernal_sizes=(3, 7), act_cfg=dict(type='SiLU'))),
    ('CSPNeXt', {}),
    ('CSPNeXt', dict(use_depthwise=True, channel_attention=False, expand_ratio=0.25)),
    ('CSPNeXt', dict(arch='P6', out_indices=(2, 3, 4, 5))),
    ('CSPNeXt', dict(out_indices=(4, 1))),
    ('Darknet', {}),
    ('Darknet', dict(out_indices=(0, 1, 2, 3, 4, 5))),
])
def test_outputs_equal_in_eval(kind, kwargs):
    native, ours = _pair(kind, **kwargs)
    native.eval()
    ours.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = native(x), ours(x)
    assert len(got) == len(expected) == len(set(kwargs.get('out_indices', (2, 3, 4))))
    assert_outputs_close(expected, got)
    assert ours.out_channels == tuple(e.shape[1] for e in expected)
    assert ours.out_strides == tuple(64 // e.shape[-1] for e in expected)


@pytest.mark.parametrize('kind', sorted(TWINS))
def test_full_size_keys_identical_with_core(kind):
    """Full-width models on the meta device: mmdet's keys, the twin's and the core's agree."""
    with torch.device('meta'):
        native = _native(kind)
        twin, core = TWINS[kind](), CORES[kind]()
    assert list(twin.state_dict()) == list(native.state_dict()) == list(core.state_dict())
    assert {k: v.shape for k, v in core.state_dict().items()} == \
        {k: v.shape for k, v in native.state_dict().items()}


def _flags(model: nn.Module):
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    return grads, modes


@pytest.mark.parametrize('kind,frozen_stages', [
    ('CSPDarknet', -1), ('CSPDarknet', 0), ('CSPDarknet', 2), ('CSPDarknet', 4),
    ('CSPNeXt', 1), ('CSPNeXt', 3),
    ('Darknet', -1), ('Darknet', 0), ('Darknet', 1), ('Darknet', 3), ('Darknet', 6)])
def test_frozen_stages_and_training_forward(kind, frozen_stages):
    native, ours = _pair(kind, frozen_stages=frozen_stages, norm_eval=False,
                         out_indices=(0, 1, 2, 3, 4, 5) if kind == 'Darknet' else (0, 1, 2, 3, 4))
    native.train()
    ours.train()
    assert _flags(ours) == _flags(native)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert_outputs_close(native(x), ours(x))  # batch statistics where not frozen, as there


@pytest.mark.parametrize('kind,kwargs', [('Darknet', {}), ('Darknet', dict(norm_eval=False)),
                                         ('CSPDarknet', dict(norm_eval=True)),
                                         ('CSPNeXt', {})])
def test_norm_eval_as_mmdet(kind, kwargs):
    native, ours = _pair(kind, **kwargs)
    native.train()
    ours.train()
    assert ours.norm_eval == native.norm_eval
    assert _flags(ours) == _flags(native)


@pytest.mark.parametrize('kind', sorted(TWINS))
def test_init_cfg_defaults_as_mmdet(kind):
    assert TWINS[kind]().init_cfg == _native(kind).init_cfg


def test_darknet_pretrained_argument():
    native = _native('Darknet', pretrained='a.pth')
    with pytest.warns(UserWarning, match='deprecated'):
        ours = MMDetDarknet(pretrained='a.pth')
    assert ours.init_cfg == native.init_cfg == dict(type='Pretrained', checkpoint='a.pth')


@pytest.mark.parametrize('kind', sorted(TWINS))
def test_detector_checkpoint_loads_strict(kind, tmp_path):
    """A whole-detector checkpoint (``backbone.`` keys next to a neck and a head), mmdet's
    ``state_dict``/``meta`` layout, loads into the twin built by type with
    ``prefix='backbone'``: every tensor, equal outputs."""
    native = _native(kind, **SMALL[kind])
    perturb_(native)
    state = {f'backbone.{k}': v for k, v in native.state_dict().items()}
    state['neck.conv.weight'] = torch.zeros(4, 4, 1, 1)
    state['bbox_head.cls.weight'] = torch.zeros(2, 4)
    path = str(tmp_path / 'detector.pth')
    torch.save(dict(state_dict=state, meta=dict(epoch=1)), path)
    ours = build_backbone(dict(type=f'mmbackbones.mmdet.{kind}', **SMALL[kind], init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone')))
    assert isinstance(ours, TWINS[kind])
    ours.init_weights()
    for key, value in native.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))


@pytest.mark.parametrize('kind', sorted(TWINS))
def test_truncated_core_loads_the_full_checkpoint(kind, tmp_path):
    """Stages past the last output are not built; the full mmdet checkpoint still loads
    through the default route (the unbuilt stages' keys named as such; ``strict=True`` allows
    no exception) and the outputs are mmdet's."""
    from mmbackbones.checkpoint import load_checkpoint
    native = _native(kind, **SMALL[kind], out_indices=(1, 2))
    perturb_(native)
    path = str(tmp_path / 'full.pth')
    torch.save(native.state_dict(), path)
    ours = CORES[kind](**SMALL[kind], out_indices=(1, 2))
    assert not any(k.startswith(('stage4', 'conv_res_block4')) for k in ours.state_dict())
    report = load_checkpoint(ours, path, logger='silent')
    assert not report.missing and len(report.loaded) == len(ours.state_dict())
    note = next(n for n in report.notes if 'not built' in n)
    assert ('conv_res_block3' if kind == 'Darknet' else 'stage3') in note
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))


@pytest.mark.parametrize('config', ['yolox/yolox_tiny_8xb8-300e_coco.py',
                                    'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
                                    'yolo/yolov3_d53_8xb8-320-273e_coco.py'])
def test_whole_detector_switches_by_backbone_type(config, tmp_path):
    """A shipped detector config, its backbone ``type`` alone set to
    ``mmbackbones.mmdet.<Type>`` (``custom_imports``), built by mmdet's own registry: the
    native detector's checkpoint loads with mmengine's ``load_checkpoint(strict=True)`` and
    ``extract_feat`` (backbone + neck) gives the native features."""
    import os

    import mmdet
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmengine.utils import import_modules_from_strings
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs',
                                       config))
    import_modules_from_strings(imports=['mmbackbones'])
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    model_cfg['backbone'].pop('init_cfg', None)
    kind = model_cfg['backbone']['type']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        native = MODELS.build(model_cfg)
        ours = MODELS.build(dict(model_cfg, backbone=dict(model_cfg['backbone'],
                                                          type=f'mmbackbones.mmdet.{kind}')))
    assert type(ours.backbone).__name__ == f'MMDet{kind}'
    perturb_(native)
    path = str(tmp_path / 'detector.pth')
    torch.save(dict(state_dict=native.state_dict(), meta={}), path)
    load_checkpoint(ours, path, strict=True, logger='silent')
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert_outputs_close(native.extract_feat(x), ours.extract_feat(x))


@pytest.mark.parametrize('kind', sorted(TWINS))
def test_arch_table_is_mmdets(kind):
    import mmdet.models.backbones as backbones
    assert CORES[kind].arch_settings == getattr(backbones, kind).arch_settings
