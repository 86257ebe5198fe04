"""The package's imports run one way, down its floors, and form no circle.

Read from the source with ``ast`` (every ``import``, function-level ones included), so a lazy
import inside a function counts as much as one at the top of a file.

Floors, lowest first (a module may import from its own floor and from the floors below)::

    0  utils, version                         validation, file writing, optional-import hints
    1  registry                               the registries and scopes (mmengine + utils only)
    2  builder, model_configs, the package    build through the registry (no model file imported;
                                              mmengine's lazy ``locations`` import the families)
    3  models.layers                          shared blocks; norms register where defined
    4  checkpoint                             readers, downloads, converters, zoo, the load
    5  models (base, backbones, necks, ...)   the contract and the families
    6  compat, integrations, detrex           host twins, detectron2/detrex, mmdet/mmseg helpers
    7  analysis                               what the commands compute
    8  cli, __main__                          the command line

``builder`` sits under the layers because nothing below ``compat`` needs it but
``checkpoint.convert`` (``convert --model``) and the front ends, and it only needs the registry.
"""
import ast
import os
import sys

import pytest

PACKAGE = 'mmbackbones'
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)

FLOORS = (  # (floor, module or package prefix); the longest matching prefix decides
    (0, 'mmbackbones.utils'), (0, 'mmbackbones.version'),
    (1, 'mmbackbones.registry'),
    (2, 'mmbackbones'), (2, 'mmbackbones.builder'), (2, 'mmbackbones.model_configs'),
    (3, 'mmbackbones.models.layers'),
    (4, 'mmbackbones.checkpoint'),
    (5, 'mmbackbones.models'),
    (6, 'mmbackbones.compat'), (6, 'mmbackbones.integrations'), (6, 'mmbackbones.detrex'),
    (7, 'mmbackbones.analysis'),
    (8, 'mmbackbones.cli'), (8, 'mmbackbones.__main__'),
)
# what registry.py may import besides the standard library (and utils)
REGISTRY_MAY_IMPORT = ('mmengine',)


def floor_of(module: str) -> int:
    best = None
    for floor, prefix in FLOORS:
        if module == prefix or module.startswith(prefix + '.'):
            if best is None or len(prefix) > len(best[1]):
                best = (floor, prefix)
    assert best is not None, f'{module} has no floor: add it to FLOORS'
    return best[0]


def package_modules() -> dict:
    """``{module name: file path}`` of every module of the package."""
    modules = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '__pycache__')))
        for file in sorted(files):
            if not file.endswith('.py'):
                continue
            parts = os.path.relpath(os.path.join(folder, file), ROOT)[:-3].split(os.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            modules['.'.join([PACKAGE] + parts)] = os.path.join(folder, file)
    return modules


def imports_of(module: str, path: str, known: dict) -> list:
    """``[(imported module, line)]``: every import statement of the file, resolved to absolute
    names (``from .x import y`` is ``x.y`` when that is a module, else ``x``)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    is_package = path.endswith('__init__.py')
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split('.')
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f'{target}.{alias.name}'
                found.append((sub if sub in known else target, node.lineno))
    return found


def import_graph() -> dict:
    known = package_modules()
    graph = {}
    for module, path in known.items():
        graph[module] = [(target, line) for target, line in imports_of(module, path, known)
                         if target == PACKAGE or target.startswith(PACKAGE + '.')]
    return graph


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (or a module importing itself),
    Tarjan's algorithm."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or any(t == node for t, _ in graph.get(node, ())):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_floor():
    for module in package_modules():
        floor_of(module)


def test_the_resolver_sees_function_level_and_relative_imports(tmp_path):
    path = tmp_path / 'x.py'
    path.write_text('from .registry import MODELS\n\ndef f():\n    from ..cli import main\n')
    known = {'mmbackbones.models.registry': '', 'mmbackbones.cli': ''}
    found = imports_of('mmbackbones.models.x', str(path), known)
    assert ('mmbackbones.models.registry', 1) in found and ('mmbackbones.cli', 4) in found


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_no_import_runs_back_up_a_floor():
    upward = []
    for module, targets in import_graph().items():
        for target, line in targets:
            if floor_of(target) > floor_of(module):
                upward.append(f'{module}:{line} imports {target} (floor {floor_of(module)} -> '
                              f'{floor_of(target)})')
    assert upward == []


def test_registry_imports_mmengine_and_utils_only():
    known = package_modules()
    path = known['mmbackbones.registry']
    stdlib = set(getattr(sys, 'stdlib_module_names', ()))
    others = []
    for target, line in imports_of('mmbackbones.registry', path, known):
        top = target.split('.')[0]
        if target.startswith('mmbackbones.utils') or top in REGISTRY_MAY_IMPORT:
            continue
        if top in stdlib:
            continue
        others.append(f'line {line}: {target}')
    assert others == []


@pytest.mark.parametrize('module', ['mmbackbones.models.base', 'mmbackbones.models.layers.norm',
                                    'mmbackbones.models.layers.mmcv_bricks'])
def test_building_does_not_re_enter_registration(module):
    source = open(package_modules()[module], encoding='utf-8').read()
    assert 'register_all_modules' not in source and 'import_from_location' not in source


def test_no_module_over_600_lines():
    long = []
    for module, path in package_modules().items():
        with open(path, encoding='utf-8') as f:
            lines = sum(1 for _ in f)
        if lines > 600:
            long.append(f'{module}: {lines} lines')
    assert long == []
