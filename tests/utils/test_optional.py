"""A missing optional dependency says what to install (a one-line CLI error, no traceback)."""
import sys

import pytest

from mmbackbones.utils.optional import MissingDependencyError, install_hint, require


def test_present_module_is_returned():
    import json
    assert require('json', 'anything') is json


@pytest.mark.parametrize('module,hint', [('timm', "mmbackbones[timm]"),
                                         ('torchvision', "mmbackbones[torchvision]"),
                                         ('onnx', "mmbackbones[onnx]"),
                                         ('PIL', 'pip install Pillow')])
def test_missing_module_names_the_extra(monkeypatch, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # what an uninstalled package looks like
    with pytest.raises(MissingDependencyError, match=r'feature X needs .*not installed') as info:
        require(module, 'feature X')
    assert hint in str(info.value)
    assert isinstance(info.value, ImportError)


def test_cli_prints_the_hint_without_traceback(monkeypatch, capsys):
    from mmbackbones.cli import main
    monkeypatch.setitem(sys.modules, 'timm', None)
    assert main(['info', 'timm.resnet18', '--no-flops', '--no-memory']) == 2
    err = capsys.readouterr().err
    assert 'TIMMBackbone needs timm' in err and "pip install 'mmbackbones[timm]'" in err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1


def test_unknown_module_hint():
    assert install_hint('somepkg') == 'pip install somepkg'
