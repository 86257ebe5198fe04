"""Every config shipped inside mmdet 3.3 whose backbone is ``DetectoRS_ResNet`` or
``TridentResNet``, switched to our twins by ``type`` alone: the whole detector.

For each config the detector is built by mmdet's registry as shipped (native) and again with
only the ``type`` of ``model.backbone`` and, for the RFP configs, of
``model.neck.rfp_backbone`` changed to ``mmbackbones.mmdet.<Type>`` (so mmdet's own ``RFP``
neck builds its second backbone from our type). The native detector's whole state dict
(randomised) loads into ours with ``strict=True``; the features (backbone + neck, the RFP
recursion included) are equal on a small image, and ours runs mmdet's ``predict``.

``python tests/downstream/test_shipped_detectors_configs.py`` prints the counts.
"""
import os
import re
import sys
import warnings

import pytest
import torch

if __name__ != '__main__':
    from tests.downstream import _common
    _common.require('mmdet')

TYPES = ('DetectoRS_ResNet', 'TridentResNet')
_MENTION = re.compile(r'\b(DetectoRS_ResNet|TridentResNet)\b')
SIZE = 96  # SAC reflect-pads by 2: the last stage needs sides >= 3
# mmdet 3.3: 7 DetectoRS configs (12 backbone dicts, 5 of them RFP neck backbones), 3 TridentNet
EXPECTED_CONFIGS = {'DetectoRS_ResNet': 7, 'TridentResNet': 3}


def shipped_configs():
    """``[dict(path, type, rfp)]`` for every shipped config whose backbone is one of TYPES."""
    import mmdet

    from tests.downstream import _common
    found = []
    for _, root, path, model, backbone, kind in _common.shipped_backbones(
            (mmdet, ), TYPES, _MENTION):
        neck = model.get('neck')
        rfp = isinstance(neck, dict) and isinstance(neck.get('rfp_backbone'), dict)
        found.append(dict(path=path, config=os.path.relpath(path, root), type=kind, rfp=rfp))
    return found


def _build(path: str, switched: bool):
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import mmbackbones  # noqa: F401 - the twins resolve through mmdet's registry
    cfg = Config.fromfile(path)
    model_cfg = cfg.model
    if switched:
        kind = model_cfg.backbone.type
        model_cfg.backbone.type = f'mmbackbones.mmdet.{kind}'
        rfp = model_cfg.get('neck', {}).get('rfp_backbone') if isinstance(
            model_cfg.get('neck'), dict) else None
        if rfp is not None:
            rfp.type = f'mmbackbones.mmdet.{rfp.type}'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pretrained= is deprecated in mmdet
        return MODELS.build(model_cfg)


def _samples(size: int):
    from mmdet.structures import DetDataSample
    sample = DetDataSample()
    sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                             batch_input_shape=(size, size), scale_factor=(1.0, 1.0),
                             pad_shape=(size, size)))
    return [sample]


def compare(entry: dict, tmp_dir: str = None) -> str:
    from tests.downstream.test_detectors_parity import aws_perturb_
    from tests.parity import assert_outputs_close
    native, ours = _build(entry['path'], False), _build(entry['path'], True)
    assert type(ours.backbone).__module__.startswith('mmbackbones.compat'), type(ours.backbone)
    if entry['rfp']:
        rfp_backbones = list(ours.neck.rfp_modules)
        assert rfp_backbones and all(type(b).__module__.startswith('mmbackbones.compat')
                                     for b in rfp_backbones)
    for m in native.modules():  # mmdet allocates the trident weight uninitialised
        if type(m).__name__ == 'TridentConv':
            torch.nn.init.kaiming_uniform_(m.weight, a=1)
    aws_perturb_(native)
    state = native.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state, strict=True)  # the whole detector, as mmdet saved it
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = native.extract_feat(x), ours.extract_feat(x)
        assert_outputs_close(expected, got)
        results = ours.predict(x, _samples(SIZE))
    assert len(results) == 1 and hasattr(results[0], 'pred_instances')
    return 'ok'


if __name__ != '__main__':
    ENTRIES = shipped_configs()

    def test_the_walk_finds_the_shipped_configs():
        counts = {t: sum(e['type'] == t for e in ENTRIES) for t in TYPES}
        rfp = sum(e['rfp'] for e in ENTRIES)
        print('\nshipped configs:', counts, 'with an RFP neck backbone:', rfp)
        assert counts == EXPECTED_CONFIGS
        assert rfp == 5  # 7 + 5 = the 12 DetectoRS_ResNet backbone dicts of mmdet 3.3

    @pytest.mark.parametrize('entry', ENTRIES, ids=[e['config'] for e in ENTRIES])
    def test_shipped_detector_switches_by_type_only(entry):
        assert compare(entry) == 'ok'


def main() -> int:
    entries = shipped_configs()
    ok = {t: 0 for t in TYPES}
    for entry in entries:
        try:
            compare(entry)
            ok[entry['type']] += 1
        except Exception as err:  # noqa: BLE001 - a report, not a test
            print(f'FAIL {entry["config"]}: {type(err).__name__}: {err}'[:300])
    for kind in TYPES:
        total = sum(e['type'] == kind for e in entries)
        print(f'mmdet {kind}: {ok[kind]} of {total} shipped configs build with the type '
              f'switched alone, load the native detector strictly and equal its features')
    return 0 if sum(ok.values()) == len(entries) else 1


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    sys.exit(main())


def torchvision_checkpoint_route(path: str, monkeypatch, home: str) -> str:
    """The shipped DetectoRS backbones name ``torchvision://resnet50``/``resnet101`` (mmdet
    loads it with ``strict=False``): served from our cache as a torchvision ResNet file, it goes
    into both switched backbones (the detector's and the RFP neck's) through ``init_weights()``
    and they equal mmdet's backbones given the same file by mmdet's ``strict=False`` load (SAC
    and RFP modules at their own init, AWS statistics computed from the weights)."""
    import importlib as _importlib

    from mmengine.config import Config
    from mmdet.registry import MODELS

    from mmbackbones.checkpoint.download import cache_path_for
    from mmbackbones.checkpoint.zoo import resolve
    from tests.parity import assert_outputs_close, perturb_
    monkeypatch.setenv('MMBACKBONES_HOME', home)
    monkeypatch.setattr(_importlib.import_module('mmbackbones.checkpoint.download'),
                        '_check_hash', lambda *args: None)  # a stand-in for the real file
    model = Config.fromfile(path).model
    done = 0
    for cfg in (model.backbone, model.neck.get('rfp_backbone')):
        if cfg is None:
            continue
        cfg = cfg.to_dict()
        url = cfg.get('pretrained') or cfg['init_cfg']['checkpoint']
        assert url.startswith('torchvision://'), url
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            native = MODELS.build(dict(cfg, _scope_='mmdet'))
            ours = MODELS.build(dict(cfg, type='mmbackbones.mmdet.DetectoRS_ResNet',
                                     _scope_='mmdet'))
            plain = MODELS.build(dict(type='ResNet', depth=cfg['depth'], _scope_='mmdet'))
        perturb_(plain)
        state = dict(plain.state_dict(), **{'fc.weight': torch.zeros(10, 2048),
                                            'fc.bias': torch.zeros(10)})
        file = cache_path_for(resolve(url)['url'])
        assert file.startswith(home)
        os.makedirs(os.path.dirname(file), exist_ok=True)
        torch.save(state, file)
        try:
            ours.init_weights()
        finally:
            os.remove(file)
        native.load_state_dict(state, strict=False)
        assert torch.equal(ours.layer3[2].conv2.weight, plain.layer3[2].conv2.weight)
        native.eval()
        ours.eval()
        x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert_outputs_close(native(x), ours(x))
        done += 1
    return done


if __name__ != '__main__':
    @pytest.mark.parametrize('config', ['detectors/detectors_cascade-rcnn_r50_1x_coco.py'])
    def test_torchvision_checkpoint_of_the_shipped_backbones(config, monkeypatch, tmp_path):
        import mmdet
        path = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', config)
        assert torchvision_checkpoint_route(path, monkeypatch, str(tmp_path / 'home')) == 2
