"""The ``mmbackbones`` console script: parser, error handling, ``list`` and ``print-config``.

Everything runs the installed script in a subprocess (tests/cli_helpers.py). ``info`` is in
test_cli_info.py, ``bench`` in test_cli_bench.py, ``show`` in test_cli_show.py, ``export`` in
test_cli_export.py, ``list`` in test_cli_list.py, ``convert``/``zoo`` in test_cli_convert.py.
"""
import os

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli, write_toy_config

COMMANDS = ('list', 'info', 'bench', 'show', 'print-config', 'export')


def test_help_lists_every_command():
    result = run_cli('--help')
    assert result.returncode == 0, result.stderr
    for command in COMMANDS + ('convert', 'zoo'):
        assert command in result.stdout


def test_help_does_not_import_torch():
    # `mmbackbones --help` must stay fast: the heavy libraries load inside the subcommands.
    code = ('import sys; from mmbackbones.cli import build_parser; build_parser(); '
            'print(sorted(m for m in ("torch", "timm", "torchvision", "matplotlib", "onnx") '
            'if m in sys.modules))')
    import subprocess
    import sys
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == '[]'


@pytest.mark.parametrize('command', COMMANDS)
def test_subcommand_help(command):
    result = run_cli(command, '--help')
    assert result.returncode == 0, result.stderr
    assert f'usage: mmbackbones {command}' in result.stdout


def test_version():
    from mmbackbones import __version__
    result = run_cli('--version')
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_no_command_is_one_line_error():
    assert_one_line_error(run_cli(), 'mmbackbones: error:', 'COMMAND')


def test_unknown_command_is_one_line_error():
    assert_one_line_error(run_cli('frobnicate'), "invalid choice: 'frobnicate'")


@pytest.mark.parametrize('command', ['info', 'bench', 'print-config', 'export'])
def test_missing_config_file(command, tmp_path):
    args = [command, tmp_path / 'nope.py']
    if command == 'export':
        args += ['-o', tmp_path / 'x.onnx']
    assert_one_line_error(run_cli(*args), f'mmbackbones {command}: error:', 'file not found',
                          'nope.py')


@pytest.mark.parametrize('args, fragment', [
    (['--input-size', '0', '32'], "argument --input-size: expected a positive integer, got '0'"),
    (['--input-size', 'abc', '32'], "expected a positive integer, got 'abc'"),
    (['--input-size', '32'], 'argument --input-size: expected 2 arguments'),
    (['--neck', 'mmpose'], "argument --neck: invalid choice: 'mmpose'"),
    (['--bogus'], 'unrecognized arguments: --bogus'),
    (['--cfg-options', 'novalue'], 'novalue'),
])
def test_bad_option_is_one_line_error(tmp_path, args, fragment):
    config = write_toy_config(tmp_path)
    assert_one_line_error(run_cli('info', config, *args), fragment)


def test_unknown_type_names_close_match(tmp_path):
    config = tmp_path / 'typo.py'
    config.write_text("model = dict(backbone=dict(type='ResNett', depth=50))\n")
    line = assert_one_line_error(run_cli('info', config), 'mmbackbones info: error:', "'ResNett'",
                                 "Did you mean 'ResNet'")
    assert 'mmbackbones list' in line


def test_bad_backbone_argument(tmp_path):
    config = write_toy_config(tmp_path, backbone='out_indices=(0, 7)')
    assert_one_line_error(run_cli('info', config), 'mmbackbones info: error:', 'out_indices',
                          '7')


def test_config_without_backbone(tmp_path):
    config = tmp_path / 'empty.py'
    config.write_text('optimizer = dict(lr=0.1)\n')
    assert_one_line_error(run_cli('info', config), 'has no backbone')


def test_config_with_syntax_error(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text('model = dict(backbone=dict(type="ResNet"\n')
    assert_one_line_error(run_cli('print-config', config), 'mmbackbones print-config: error:')


def test_config_with_failing_custom_import(tmp_path):
    config = tmp_path / 'imports.py'
    config.write_text("custom_imports = dict(imports=['no_such_module_xyz'])\n"
                      "backbone = dict(type='ResNet', depth=18)\n")
    assert_one_line_error(run_cli('info', config), 'no_such_module_xyz')


def test_config_that_is_not_a_config(tmp_path):
    config = tmp_path / 'notes.txt'
    config.write_text('hello\n')
    assert_one_line_error(run_cli('print-config', config), 'error:',
                          'notes.txt is not a config file', '.py, .json, .yaml, .yml')


def test_debug_flag_shows_the_traceback(tmp_path):
    config = tmp_path / 'empty.py'
    config.write_text('optimizer = dict(lr=0.1)\n')
    result = run_cli('--debug', 'info', config)
    assert result.returncode != 0
    assert 'Traceback' in result.stderr and 'KeyError' in result.stderr


# ----- print-config --------------------------------------------------------------------------
@pytest.fixture
def derived_config(tmp_path):
    base = tmp_path / '_base_'
    base.mkdir()
    (base / 'model.py').write_text(
        "model = dict(type='ImageClassifier',\n"
        "             backbone=dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3),\n"
        "                           norm_cfg=dict(type='BN', requires_grad=True)))\n")
    path = tmp_path / 'derived.py'
    path.write_text(
        "_base_ = ['./_base_/model.py']\n"
        "model = dict(backbone=dict(depth=18, norm_cfg=dict(_delete_=True, type='GN', "
        "num_groups=8)))\n")
    return path


def test_print_config_is_mmengine_pretty_text(derived_config):
    from mmengine.config import Config
    result = run_cli('print-config', derived_config)
    assert result.returncode == 0, result.stderr
    expected = Config.fromfile(str(derived_config)).pretty_text
    assert result.stdout.strip() == expected.strip()
    merged = Config.fromstring(result.stdout, '.py')
    assert merged.model.backbone.depth == 18
    assert merged.model.backbone.norm_cfg == dict(type='GN', num_groups=8)  # _delete_ applied
    assert merged.model.backbone.out_indices == (0, 1, 2, 3)  # inherited


def test_print_config_with_cfg_options(derived_config):
    from mmengine.config import Config
    result = run_cli('print-config', derived_config, '--cfg-options', 'model.backbone.depth=101',
                     'model.backbone.out_indices=(2,3)')
    assert result.returncode == 0, result.stderr
    merged = Config.fromstring(result.stdout, '.py')
    assert merged.model.backbone.depth == 101
    assert tuple(merged.model.backbone.out_indices) == (2, 3)


def test_module_entry_point_matches_script(derived_config):
    import subprocess
    import sys
    from tests.cli_helpers import REPO_ROOT
    out = subprocess.run([sys.executable, '-m', 'mmbackbones', 'print-config',
                          str(derived_config)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == run_cli('print-config', derived_config).stdout
    assert os.path.isfile(os.path.join(REPO_ROOT, 'mmbackbones', '__main__.py'))


# ----- tools/*.py: the OpenMMLab-style script wrappers ----------------------------------------
TOOLS = {'info.py': 'info', 'bench.py': 'bench', 'show.py': 'show',
         'print_config.py': 'print-config', 'export_onnx.py': 'export', 'list_models.py': 'list',
         'zoo.py': 'zoo'}


def run_tool(name, *args):
    import subprocess
    import sys
    from tests.cli_helpers import REPO_ROOT
    return subprocess.run([sys.executable, os.path.join('tools', name), *map(str, args)],
                          cwd=REPO_ROOT, capture_output=True, text=True)


@pytest.mark.parametrize('tool', sorted(TOOLS))
def test_tool_wrapper_help(tool):
    result = run_tool(tool, '--help')
    assert result.returncode == 0, result.stderr
    assert f'usage: mmbackbones {TOOLS[tool]}' in result.stdout


def test_tool_wrapper_runs_and_fails_like_the_script(derived_config, tmp_path):
    result = run_tool('print_config.py', derived_config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == run_cli('print-config', derived_config).stdout
    assert_one_line_error(run_tool('info.py', tmp_path / 'nope.py'), 'file not found')
    (tmp_path / 'notes.txt').write_text('hello\n')
    debug = run_tool('print_config.py', '--debug', tmp_path / 'notes.txt')
    assert debug.returncode != 0 and 'Traceback' in debug.stderr
