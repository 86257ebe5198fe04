"""The documentation covers the code: every registered family, zoo row and CLI subcommand has a
generated page (docs/_ext/mmbdocs.py plans them without Sphinx and without building a model),
and the README stays a first visit."""
import os
import re
import sys

import pytest

from mmbackbones.checkpoint.zoo import load_zoo
from mmbackbones.registry import MODELS, register_all_modules
from tests.docs.snippets import REPO

sys.path.insert(0, os.path.join(REPO, 'docs', '_ext'))
import mmbdocs  # noqa: E402

README_MAX_LINES = 200


@pytest.fixture(scope='module')
def pages():
    return mmbdocs.plan()


def test_every_registered_family_has_a_page(pages):
    register_all_modules()
    families = {getattr(cls, '__module__', '') for cls in MODELS.module_dict.values()}
    families = {m for m in families if m.startswith('mmbackbones.models.backbones.')}
    assert families, 'no family registered'
    covered = {mmbdocs.FAMILY_PACKAGE + p.family for p in pages if p.kind == 'family'}
    assert families <= covered, sorted(families - covered)
    on_pages = {name for p in pages for name in p.classes}
    for name, cls in MODELS.module_dict.items():
        if getattr(cls, '__module__', '') in families:
            assert name in on_pages, f'{name} is on no family page'


def test_every_zoo_row_has_a_family_page(pages):
    on_family_pages = {name for p in pages if p.kind == 'family' for name in p.zoo}
    missing = [e['name'] for e in load_zoo() if e['name'] not in on_family_pages]
    assert not missing, f'zoo rows whose arch type is on no family page: {missing}'
    (zoo_page, ) = [p for p in pages if p.kind == 'zoo']
    assert zoo_page.zoo == [e['name'] for e in load_zoo()]


def test_every_subcommand_has_a_section():
    from mmbackbones.cli import build_parser

    import argparse
    parser = build_parser()
    (sub, ) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    text = mmbdocs.render_cli(mmbdocs.Page('cli', 'cli', 'cli'))
    for name in sub.choices:
        assert f'## `{name}`' in text, name
        assert f'usage: mmbackbones {name}' in text, name


def test_zoo_page_lists_every_row(pages):
    families = {p.family: p.classes for p in pages if p.kind == 'family'}
    text = mmbdocs.render_zoo(None, families)
    for e in load_zoo():
        assert f'| `{e["name"]}` |' in text


def test_variants_group_aliases():
    from mmbackbones.models.backbones.swin import SwinTransformer

    groups = mmbdocs.variants(SwinTransformer)
    assert ['tiny', 't'] in groups and all(len(g) == 2 for g in groups), groups
    assert mmbdocs.arch_argument(SwinTransformer) == 'arch'
    assert mmbdocs.spread_out_indices(12) == (2, 5, 8, 11)
    assert mmbdocs.spread_out_indices(4) == (0, 1, 2, 3)


def test_hand_written_pages_are_in_the_index():
    index = open(os.path.join(REPO, 'docs', 'index.md')).read()
    for root, _, files in os.walk(os.path.join(REPO, 'docs')):
        rel_root = os.path.relpath(root, os.path.join(REPO, 'docs'))
        if rel_root.startswith(('_build', '_ext', 'reference')):
            continue
        for name in files:
            if name.endswith('.md') and name != 'index.md':
                page = os.path.normpath(os.path.join(rel_root, name[:-3])).replace(os.sep, '/')
                assert f'\n{page}\n' in index, f'docs/{page}.md is in no toctree of index.md'


def test_readme_is_a_first_visit():
    text = open(os.path.join(REPO, 'README.md'), encoding='utf-8').read()
    assert len(text.splitlines()) <= README_MAX_LINES
    for target in re.findall(r'\]\((docs/[^)#]+)', text):
        assert os.path.isfile(os.path.join(REPO, target)), target
    assert 'make test' in text and 'make docs' in text
