"""The documentation's code blocks marked `<!-- snippet: ... detectron2 -->` run here, with the real
libraries (tests/docs/snippets.py explains the markers; the main tier runs the others)."""
import os

import pytest

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'builds .venv-detectron2 from ../shared/wheels)')

from tests.docs import snippets  # noqa: E402

PAGES = [p for p in snippets.doc_pages()
         if any(b.tier == 'detectron2' for b in snippets.parse(p))]


def test_some_page_has_detectron2_blocks():
    assert PAGES


@pytest.mark.parametrize('path', PAGES, ids=lambda p: os.path.relpath(p, snippets.REPO))
def test_page_snippets_run_in_tier(path, tmp_path, monkeypatch):
    workdir = snippets.prepare_workdir(tmp_path, monkeypatch)
    done = snippets.run_page(path, workdir, tier='detectron2')
    assert any(b.tier == 'detectron2' for b in done)
