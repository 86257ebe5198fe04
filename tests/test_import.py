"""`import mmbackbones` stays light: no timm, torchvision or mmcv until used."""
import json
import subprocess
import sys

HEAVY = ('timm', 'torchvision', 'mmcv', 'cv2')


def _modules_after(code: str) -> set:
    script = code + '\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n'
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _heavy(modules: set) -> list:
    return sorted(m for m in modules if m.split('.')[0] in HEAVY)


def test_import_package_is_light():
    assert _heavy(_modules_after('import mmbackbones')) == []


def test_importing_models_does_not_import_wrapped_libraries():
    modules = _modules_after('import mmbackbones.models')
    assert not [m for m in modules if m.split('.')[0] in ('timm', 'torchvision')]
    # mmcv.cnn pulls in OpenCV: the layer builders import it on first use (layers.mmcv_bricks)
    assert 'cv2' not in modules and 'mmcv.cnn' not in modules


def test_registry_lookup_of_native_type_does_not_import_wrapped_libraries():
    modules = _modules_after(
        "from mmbackbones import MODELS\nassert MODELS.get('ResNet') is not None")
    assert not [m for m in modules if m.split('.')[0] in ('timm', 'torchvision')]
