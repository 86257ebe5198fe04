"""Sphinx configuration of the mmbackbones documentation (``make docs``).

Sphinx with MyST: the pages are Markdown (as the README was), autodoc and napoleon read the
Google-style docstrings, and the reference pages are written from the code by ``_ext/mmbdocs``
at every build. Nothing is fetched: no intersphinx, the bundled ``alabaster`` theme.
"""
import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DOCS))  # the checkout's mmbackbones
sys.path.insert(0, os.path.join(DOCS, '_ext'))
os.environ.setdefault('MPLBACKEND', 'Agg')

import mmbackbones  # noqa: E402

project = 'mmbackbones'
release = version = mmbackbones.__version__
extensions = ['myst_parser', 'sphinx.ext.autodoc', 'sphinx.ext.napoleon', 'mmbdocs_sphinx']
source_suffix = {'.md': 'markdown'}
exclude_patterns = ['_build', '_ext', 'Thumbs.db', '.DS_Store']
myst_enable_extensions = ['colon_fence']
myst_heading_anchors = 3
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # the signatures carry them; long Union types clutter the page
html_theme = 'alabaster'
html_theme_options = dict(description='OpenMMLab-style backbones for mmdet, mmseg, mmpretrain, '
                          'detectron2 and detrex', fixed_sidebar=True, page_width='1200px',
                          sidebar_width='240px')
html_static_path = []
