"""mmdet/mmseg configs reach our registries as ``mmcls.X``/``mmbackbones.X``/``timm.X`` through
their own (plain mmengine) registries: a type that is not registered there, a dotted path, or a
nested config naming code is refused, and nothing runs (marker files)."""
import pytest

from tests.downstream import _common

mmdet = _common.require('mmdet')
mmseg = _common.require('mmseg')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


def _host_models(toolbox: str):
    if toolbox == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(toolbox)
    return MODELS


@pytest.mark.parametrize('toolbox', ['mmdet', 'mmseg'])
def test_host_configs_build_only_registered_types(tmp_path, toolbox):
    marker = tmp_path / 'MARKER'
    models = _host_models(toolbox)
    command = f'touch {marker}'
    refused = [
        dict(type='mmcls.os.system', command=command),
        dict(type='mmbackbones.os.system', command=command),
        dict(type='mmcls.subprocess.run', args=['touch', str(marker)]),
        dict(type='timm.os.system', command=command),
        dict(type='mmcls.ConvNeXt', arch='atto', act_cfg=dict(type='os.system', command=command)),
        dict(type='mmbackbones.ResNet', depth=18,
             init_cfg=dict(type='subprocess.run', args=['touch', str(marker)])),
    ]
    for cfg in refused:
        with pytest.raises(KeyError) as info:
            models.build(cfg)
        assert 'os.system' in str(info.value) or 'subprocess.run' in str(info.value)
    assert not marker.exists()
    assert type(models.build(dict(type='mmcls.ResNet', depth=18))).__module__.startswith(
        'mmbackbones.')


def test_a_host_config_file_with_a_dotted_backbone_type(tmp_path):
    marker = tmp_path / 'MARKER'
    path = tmp_path / 'det.py'
    path.write_text(
        "custom_imports = dict(imports=['mmbackbones'], allow_failed_imports=False)\n"
        f"backbone = dict(type='mmcls.subprocess.run', args=['touch', {str(marker)!r}])\n")
    cfg = Config.fromfile(str(path))
    models = _host_models('mmdet')
    with pytest.raises(KeyError, match='subprocess.run'):
        models.build(cfg.backbone)
    assert not marker.exists()
