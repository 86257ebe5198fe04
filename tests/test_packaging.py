"""Install traps: extras, the Makefile's torch pins per architecture."""
import os
import runpy
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def setup_kwargs():
    import setuptools
    captured = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    cwd = os.getcwd()
    try:
        os.chdir(REPO)
        runpy.run_path(os.path.join(REPO, 'setup.py'), run_name='__main__')
    finally:
        setuptools.setup = original
        os.chdir(cwd)
    return captured


def test_documented_extras_exist(setup_kwargs):
    extras = setup_kwargs['extras_require']
    assert {'lite', 'timm', 'torchvision', 'onnx', 'viz', 'all', 'downstream', 'tests'} <= set(
        extras)
    assert sorted(extras['all']) == sorted(r for name in ('timm', 'torchvision', 'onnx', 'viz')
                                           for r in extras[name])
    assert any(r.startswith('setuptools<81') for r in extras['downstream'])
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = f.read()
    for name in extras:
        assert f'[{name}]' in readme, f'extra {name!r} is not documented in README.md'


def test_only_the_lite_extra_installs_mmcv(setup_kwargs):
    """A full mmcv (mmdet/mmseg) must never get mmcv-lite installed over it by an extra."""
    for name, requirements in setup_kwargs['extras_require'].items():
        has_mmcv = any(r.startswith('mmcv') for r in requirements)
        assert has_mmcv == (name == 'lite'), name
    assert not any(r.startswith('mmcv') for r in setup_kwargs['install_requires'])


@pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')
@pytest.mark.parametrize('arch,torch', [('aarch64', 'torch==2.9.1'), ('arm64', 'torch==2.9.1'),
                                        ('x86_64', 'torch==2.14.1')])
def test_makefile_torch_pins_per_arch(arch, torch):
    out = subprocess.run(['make', '-n', '-B', 'venv', f'ARCH={arch}'], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert torch in out.stdout
