import os

import pytest
import torch

# Tests run two at a time (pytest -n 2) on 2 cores: one thread each.
torch.set_num_threads(1)
os.environ.setdefault('MMBACKBONES_HOME', os.path.join(os.path.dirname(__file__), '..',
                                                       'work_dirs', 'test_cache'))

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def repo_root():
    return REPO_ROOT


@pytest.fixture
def toy_registered():
    """``ToyBackbone`` (tests/toy_backbone.py) buildable by type name during the test only."""
    from tests.toy_backbone import registered
    with registered() as cls:
        yield cls
