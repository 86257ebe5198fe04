"""A family file never imports another family file (DESIGN.md), with the variants that are
their base family's network by construction named here: they subclass its core, as mmpretrain's
do (``ResNeSt``/``Res2Net`` are ResNets with other blocks; ``MAEViT`` and ``ViTEVA02`` are
VisionTransformers), and a family may split one network over several files of its own prefix
(``vit_args.py``). Shared blocks belong in ``models/layers/``. Read from the source with ``ast``.
"""
import ast
import os

import pytest

BACKBONES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         'mmbackbones', 'models', 'backbones')
#: family file -> the family file whose core it subclasses
VARIANT_OF = {'resnest': 'resnet', 'res2net': 'resnet', 'mae': 'vit', 'vit_eva02': 'vit',
              'hrnet_twins': 'hrnet', 'detectors_resnet': 'resnet', 'trident_resnet': 'resnet'}


def _family(module: str) -> str:
    return VARIANT_OF.get(module, module.split('_')[0] if module.startswith('vit_') else module)


def _family_files():
    return sorted(f[:-3] for f in os.listdir(BACKBONES)
                  if f.endswith('.py') and f != '__init__.py')


def _imported_siblings(module: str):
    with open(os.path.join(BACKBONES, module + '.py')) as f:
        tree = ast.parse(f.read())
    siblings = set(_family_files())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            name = node.module.split('.')[0]
            if name in siblings:
                yield name
        elif isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module:
            for alias in node.names:
                if alias.name in siblings:
                    yield alias.name


@pytest.mark.parametrize('module', _family_files())
def test_family_file_imports_no_other_family(module):
    for imported in _imported_siblings(module):
        assert _family(imported) == _family(module) or VARIANT_OF.get(module) == imported, (
            f'models/backbones/{module}.py imports {imported}.py, another family: move what '
            f'they share into models/layers/')


def test_variant_table_names_existing_files():
    files = set(_family_files())
    assert set(VARIANT_OF) <= files and set(VARIANT_OF.values()) <= files
