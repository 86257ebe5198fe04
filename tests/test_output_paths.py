"""Output paths are checked before anything is built, and messages stay short and name files."""
import json
import os

import pytest

from mmbackbones import build_backbone, build_backbone_from_config, load_config
from mmbackbones.utils.fileio import output_problem
from mmbackbones.utils.text import cut, shown
from tests.cli_helpers import assert_file_refused, assert_one_line_error, run_cli


def test_output_problem_names_each_unusable_path(tmp_path):
    folder = tmp_path / 'out.onnx'
    folder.mkdir()
    assert 'existing folder' in output_problem(str(folder), ('.onnx',))
    assert 'does not exist' in output_problem(str(tmp_path / 'no' / 'x.onnx'), ('.onnx',))
    a_file = tmp_path / 'file'
    a_file.write_text('')
    assert 'not a folder' in output_problem(str(a_file / 'x.onnx'), ('.onnx',))
    assert 'must end with .onnx' in output_problem(str(tmp_path / 'x.png'), ('.onnx',))
    assert 'not a regular file' in output_problem('/dev/null', ())
    assert output_problem(str(tmp_path / 'x.onnx'), ('.onnx',)) is None
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / 'locked'
        locked.mkdir(mode=0o500)
        assert 'not writable' in output_problem(str(locked / 'x.onnx'), ('.onnx',))


@pytest.mark.parametrize('command', [
    ['export', '{config}', '-o', '{folder}.onnx'],
    ['show', '{config}', '--out', '{folder}.png'],
    ['convert', '{src}', '{folder}.safetensors', '--model', '{config}'],
])
def test_cli_refuses_an_unusable_output_before_building(tmp_path, command):
    """The config names a type that does not exist: the error is about the output path, so the
    path was checked first (nothing was built or read)."""
    config = tmp_path / 'cfg.json'
    config.write_text(json.dumps(dict(backbone=dict(type='NoSuchBackboneType'))))
    names = dict(config=config, src=tmp_path / 'missing.pth', folder=tmp_path / 'out')
    args = [part.format(**names) for part in command]
    for part in args:
        if part.startswith(str(tmp_path / 'out')):
            os.mkdir(part)
    if command[0] == 'show':
        args[2:2] = [os.path.join(os.path.dirname(__file__), '..', 'demo', 'demo.png')]
    result = run_cli(*args)
    assert_one_line_error(result, 'existing folder')


def test_text_helpers_cut_long_values():
    assert shown([1, 2]) == '[1, 2]'
    long = shown(list(range(200_000)))
    assert len(long) < 260 and '200000 items' in long
    assert len(cut('x' * 10_000, 300)) <= 300 and '10000 characters' in cut('x' * 10_000, 300)


def test_a_huge_value_gives_a_short_message():
    with pytest.raises((ValueError, TypeError)) as info:
        build_backbone(dict(type='ResNet', depth=18, out_indices=list(range(200_000))))
    assert 'out_indices' in str(info.value) and len(str(info.value)) < 1000
    with pytest.raises(KeyError) as info:
        build_backbone(dict(type='x' * 100_000))
    assert len(str(info.value)) < 1000


@pytest.mark.parametrize('base,what', [
    ("'../secret.txt'", 'is not a config file'), ("'./nope.py'", 'not found'),
    ("'./folder'", 'is a directory'), ("[3]", '_base_ must be')])
def test_bad_base_files_are_named(tmp_path, base, what):
    (tmp_path / 'secret.txt').write_text('password')
    (tmp_path / 'cfgs').mkdir()
    (tmp_path / 'cfgs' / 'folder').mkdir()
    child = tmp_path / 'cfgs' / 'child.py'
    child.write_text(f'_base_ = {base}\nbackbone = dict(type="ResNet", depth=18)\n')
    with pytest.raises((OSError, ValueError)) as info:
        load_config(child)
    message = str(info.value)
    assert what in message and 'child.py' in message, message
    if 'secret' in base:
        assert 'secret.txt' in message and 'password' not in message


def test_a_config_with_a_bad_suffix_is_named(tmp_path):
    assert_file_refused(tmp_path / 'model.txt', 'backbone = dict(type="ResNet")\n',
                        build_backbone_from_config, 'model.txt')
    assert_file_refused(tmp_path / 'bad.yaml', 'backbone: [unclosed\n', load_config, 'bad.yaml')
