import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name):
    """Requirement lines of requirements/<name>.txt (comments and blanks dropped)."""
    with open(os.path.join(HERE, 'requirements', name)) as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


def read_version():
    scope = {}
    with open(os.path.join(HERE, 'mmbackbones', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


# The extras (README "Install"): one per optional library, `all` for every one of them.
# mmcv is in none but `lite`: a full mmcv (mmdet/mmseg) must never get mmcv-lite over it.
EXTRA_OF = {'timm': 'timm', 'torchvision': 'torchvision', 'onnx': 'onnx', 'onnxruntime': 'onnx',
            'matplotlib': 'viz', 'Pillow': 'viz'}


def _project(requirement):
    for i, ch in enumerate(requirement):
        if not (ch.isalnum() or ch in '-_.'):
            return requirement[:i]
    return requirement


def extras():
    """``lite`` (mmcv-lite), ``timm``, ``torchvision``, ``onnx``, ``viz``, ``all``,
    ``downstream`` (what mmdet/mmseg configs need besides those packages), ``tests``."""
    result = {'lite': read_requirements('mminstall.txt'),
              'downstream': read_requirements('downstream-extra.txt'),
              'tests': read_requirements('tests.txt'), 'all': []}
    for requirement in read_requirements('optional.txt'):
        extra = EXTRA_OF[_project(requirement)]
        result.setdefault(extra, []).append(requirement)
        result['all'].append(requirement)
    return result


class BuildPyWithConfigs(build_py):
    """Ship the top-level configs/ inside the package as mmbackbones/.mim/configs (mim's layout,
    where mmengine resolves ``_base_ = 'mmbackbones::resnet/resnet50.py'``).

    A checkout (and so an editable install) has ``mmbackbones/.mim/configs`` as a symlink to
    ``../../configs``; a wheel gets a copy of the files.
    """

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return  # the editable finder maps mmbackbones/ to the checkout: the symlink serves
        mim = os.path.join(self.build_lib, 'mmbackbones', '.mim')
        target = os.path.join(mim, 'configs')
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        shutil.copytree(os.path.join(HERE, 'configs'), target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        shutil.copy2(os.path.join(HERE, 'mmbackbones', '.mim', 'model-index.yml'), mim)


setup(
    name='mmbackbones',
    version=read_version(),
    description='An OpenMMLab-style registry of multi-scale backbones: native ResNet/ViT, '
                'any timm or torchvision model',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools', 'benchmarks')),
    include_package_data=True,
    package_data={'mmbackbones': ['checkpoint/*.json']},
    cmdclass={'build_py': BuildPyWithConfigs},
    python_requires='>=3.8',
    # mmcv is deliberately not here: mmcv and mmcv-lite both install the module `mmcv`, and
    # requiring either would install it over the other. `import mmbackbones` checks the version.
    install_requires=read_requirements('runtime.txt'),
    extras_require=extras(),
    entry_points={'console_scripts': ['mmbackbones=mmbackbones.cli:main']},
    license='Apache-2.0',
)
