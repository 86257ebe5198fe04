"""docs/own-backbone.md "Write your own backbone": the example runs as written, and gets the
contract.

The page's code blocks (moved there from the README) are taken from docs/own-backbone.md:
``# tinynet.py`` and ``# tinynet_config.py`` are written to files, ``# use`` is executed, and
the ``mmbackbones info`` line is run in a subprocess (the real console script, importing the
file via ``custom_imports``). The registered ``TinyNet`` is removed afterwards.
"""
import os
import re
import shlex
import sys

import pytest
import torch

from mmbackbones.models.base import set_debug_checks
from mmbackbones.registry import MODELS
from tests.cli_helpers import REPO_ROOT, TESTS_DIR, run_cli

PAGE = os.path.join('docs', 'own-backbone.md')
SECTION = '# Write your own backbone'


def readme_blocks():
    text = open(os.path.join(REPO_ROOT, PAGE), encoding='utf-8').read()
    assert SECTION in text, f'{PAGE} lost its "Write your own backbone" title'
    section = text.split(SECTION, 1)[1].split('\n## ', 1)[0]
    blocks = re.findall(r'```(\w+)\n(.*?)```', section, flags=re.S)
    named = {}
    for lang, body in blocks:
        first = body.splitlines()[0]
        key = first[2:].strip() if lang == 'python' and first.startswith('# ') else lang
        named[key] = body
    return named


@pytest.fixture(scope='module')
def blocks():
    return readme_blocks()


@pytest.fixture
def tinynet(blocks, tmp_path, monkeypatch):
    """The page's tinynet.py, imported from a scratch folder; TinyNet unregistered after."""
    (tmp_path / 'tinynet.py').write_text(blocks['tinynet.py'])
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop('tinynet', None)
    try:
        import tinynet
        yield tinynet
    finally:
        sys.modules.pop('tinynet', None)
        MODELS.module_dict.pop('TinyNet', None)


def test_example_class_is_about_thirty_lines(blocks):
    code = [line for line in blocks['tinynet.py'].splitlines() if line.strip()]
    cls = code[next(i for i, line in enumerate(code) if line.startswith('@MODELS')):]
    assert len(cls) <= 32, len(cls)


def test_usage_block_runs_as_written(blocks, tinynet):
    namespace = {'torch': torch}
    exec(compile(blocks['use'], 'docs/own-backbone.md (use)', 'exec'), namespace)  # noqa: S102
    net = namespace['net']
    assert isinstance(net, tinynet.TinyNet)
    assert net.out_indices == (1, 2)  # -1 resolved against num_stages
    assert net.stem.training is False and net.stages[0].training is False  # frozen: eval
    assert net.stages[1].training is True


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(out_indices=(5, )), 'out_indices contains 5, out of range'),
    (dict(frozen_stages=9), 'frozen_stages must be in -1..3'),
    (dict(out_indices='all'), 'out_indices must be an int or a list/tuple'),
    (dict(frozen_stages=1.5), 'frozen_stages must be an int'),
])
def test_the_base_class_checks_the_arguments(tinynet, kwargs, fragment):
    with pytest.raises((ValueError, TypeError), match=re.escape(fragment)) as info:
        tinynet.TinyNet(**kwargs)
    assert str(info.value).startswith('TinyNet: ')


def test_debug_check_names_the_output_whose_metadata_is_wrong(tinynet):
    net = tinynet.TinyNet()
    net._set_outputs([16, 32, 99], [4, 8, 16], ['stage1', 'stage2', 'stage3'])
    x = torch.randn(1, 3, 32, 32)
    previous = set_debug_checks(False)
    try:
        assert len(net(x)) == 3  # off: no check
        set_debug_checks(True)
        with pytest.raises(RuntimeError, match="output 'stage3': out_channels declares 99, "
                           'forward gives 64'):
            net(x)
        net._set_outputs([16, 32, 64], [4, 8, 8], ['stage1', 'stage2', 'stage3'])
        with pytest.raises(RuntimeError, match="output 'stage3': out_strides declares 8, but "
                           '32 input rows become 2'):
            net(x)
        net._set_outputs([16, 32, 64], [4, 8, 16], ['stage1', 'stage2', 'stage3'])
        assert len(net(x)) == 3
        net.forward = lambda x: ()  # e.g. a forward testing `i in out_indices` against -1
        with pytest.raises(RuntimeError, match='forward returned 0 outputs but the metadata '
                           'declares 3'):
            net(x)
    finally:
        set_debug_checks(previous)


def test_set_outputs_must_match_out_indices(tinynet):
    net = tinynet.TinyNet()
    with pytest.raises(ValueError, match=r'TinyNet: out_indices=\(0, 1, 2\) asks for 3 outputs '
                       r'but _set_outputs declares 2'):
        net._set_outputs([16, 32], [4, 8], ['stage1', 'stage2'])


def _run_info(blocks, tmp_path, code=None):
    (tmp_path / 'tinynet.py').write_text(code or blocks['tinynet.py'])
    (tmp_path / 'tinynet_config.py').write_text(blocks['tinynet_config.py'])
    line = next(line for line in blocks['bash'].splitlines() if 'mmbackbones info' in line)
    words = shlex.split(line)
    assert words[0] == 'PYTHONPATH=.' and words[1] == 'mmbackbones'
    path = os.pathsep.join([str(tmp_path), TESTS_DIR, REPO_ROOT])
    return run_cli(*words[2:], '--no-memory', '--no-flops', cwd=tmp_path,
                   env_extra={'PYTHONPATH': path})


def test_info_command_as_written(blocks, tmp_path):
    result = _run_info(blocks, tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'TinyNet' in result.stdout
    assert 'in_channels=[16, 32, 64]' in result.stdout


def test_info_fails_naming_the_output_when_declared_strides_are_wrong(blocks, tmp_path):
    code = blocks['tinynet.py'].replace('[4 * 2**i for i', '[2 * 2**i for i')
    assert code != blocks['tinynet.py']
    result = _run_info(blocks, tmp_path, code)
    assert result.returncode == 1
    assert "output 'stage1': out_strides declares 2, but 64 input rows become 16" in \
        result.stderr
    assert 'failed' in result.stderr and 'Traceback' not in result.stderr



def _undeclared_backbone(out_indices=(0, ), frozen_stages=-1):
    from mmbackbones.models.base import BaseBackbone

    class MyNet(BaseBackbone):

        def __init__(self, out_indices=(0, ), frozen_stages=-1):
            super().__init__()
            self.out_indices, self.frozen_stages = out_indices, frozen_stages
            self.conv = torch.nn.Conv2d(3, 8, 3, 2, 1)
            self._set_outputs([8] * len(self.out_indices), [2] * len(self.out_indices),
                              [f'stage{i}' for i in self.out_indices])
            self._freeze_stages()

    return MyNet(out_indices, frozen_stages)


def test_without_num_stages_a_negative_index_is_refused_not_misread():
    with pytest.raises(ValueError, match=r'MyNet: out_indices=\(-1,\) counts from the end, but '
                       'the class declares no num_stages'):
        _undeclared_backbone(out_indices=(-1, ))


def test_frozen_stages_without_stages_to_freeze_is_refused():
    assert _undeclared_backbone(frozen_stages=-1).frozen_stages == -1
    with pytest.raises(ValueError, match='MyNet: frozen_stages=2 but the backbone declares no '
                       r'stages to freeze \(implement stem_and_stages\(\)'):
        _undeclared_backbone(frozen_stages=2)
