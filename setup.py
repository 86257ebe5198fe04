import os

from setuptools import find_packages, setup

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
    python_requires='>=3.8',
    # mmcv is deliberately not here: mmcv and mmcv-lite both install the module `mmcv`, and
    # requiring either would install it over the other. `import mmbackbones` checks the version.
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'mim': read_requirements('mminstall.txt'),
        'optional': read_requirements('optional.txt'),
        'tests': read_requirements('tests.txt'),
    },
    entry_points={'console_scripts': ['mmbackbones=mmbackbones.cli:main']},
    license='Apache-2.0',
)
