"""The CLI's user-error contract: one line on stderr, exit code 2, checked before any work.

Run in-process through ``mmbackbones.cli.main`` (what the console script calls) so that each case
costs milliseconds; tests/test_cli.py covers the real console script in a subprocess.
"""
import pytest
from mmengine.config import Config

from mmbackbones.builder import check_config_tree, load_config
from mmbackbones.cli import main


def run_main(capsys, *argv):
    """``(exit code, the one stderr line)``; fails on a traceback or several lines."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse refusals
        code = exit_.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert 'Traceback' not in captured.err + captured.out
    assert len(lines) <= 1, captured.err
    return code, (lines[0] if lines else '')


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'resnet.py'
    path.write_text("model = dict(backbone=dict(type='ResNet', depth=18))\n")
    return path


@pytest.fixture
def unbuildable(tmp_path):
    """A config that fails when built: a refusal that names something else came first."""
    path = tmp_path / 'unbuildable.py'
    path.write_text("model = dict(backbone=dict(type='NoSuchBackbone'))\n")
    return path


@pytest.mark.parametrize('item', ['model.backbone.out_indices=(0,',
                                  'model.backbone.out_indices=[0,(1]'])
def test_unparsable_cfg_option_is_one_line(capsys, config, item):
    code, line = run_main(capsys, 'print-config', config, '--cfg-options', 'a=1', item)
    assert code == 2
    assert line.startswith('mmbackbones print-config: error: argument --cfg-options: cannot '
                           f'parse {item!r}: Imbalanced brackets'), line


def test_cfg_option_that_cannot_merge_names_the_file(capsys, config):
    code, line = run_main(capsys, 'print-config', config, '--cfg-options',
                          'model.backbone.depth.x=1')
    assert code == 2 and f'config {config}: cannot apply' in line, line


def test_base_cycle_is_refused_naming_the_cycle(capsys, tmp_path, monkeypatch):
    (tmp_path / 'a.py').write_text("_base_ = './b.py'\nmodel = dict(backbone=dict(type='X'))\n")
    (tmp_path / 'b.py').write_text("_base_ = ['./c.py']\n")
    (tmp_path / 'c.py').write_text("_base_ = ['./a.py']\n")

    def parse(*args, **kwargs):  # mmengine recurses for 15 s on a cycle: it must not see one
        raise AssertionError('mmengine parsed a config with a _base_ cycle')

    monkeypatch.setattr(Config, 'fromfile', parse)
    code, line = run_main(capsys, 'print-config', tmp_path / 'a.py')
    assert code == 2
    names = [str(tmp_path / n) for n in ('a.py', 'b.py', 'c.py', 'a.py')]
    assert line == 'mmbackbones print-config: error: _base_ cycle in config files: ' + \
        ' -> '.join(names)
    (tmp_path / 'self.py').write_text("_base_ = './self.py'\n")
    with pytest.raises(ValueError, match=r'_base_ cycle .*self.py -> .*self.py'):
        check_config_tree(tmp_path / 'self.py')


def test_syntax_error_names_the_file_and_line(capsys, tmp_path):
    broken = tmp_path / 'broken.py'
    broken.write_text("x = 1\nmodel = dict(backbone=dict(type='ResNet'\n")
    child = tmp_path / 'child.py'
    child.write_text("_base_ = './broken.py'\n")
    for path in (broken, child):  # a broken base is named, not the config that inherits it
        code, line = run_main(capsys, 'print-config', path)
        assert code == 2
        assert line == (f"mmbackbones print-config: error: syntax error in {broken}, line 2: "
                        "'(' was never closed"), line


def test_missing_base_and_failing_config_name_the_file(capsys, tmp_path):
    missing = tmp_path / 'missing_base.py'
    missing.write_text("_base_ = './nowhere.py'\n")
    code, line = run_main(capsys, 'print-config', missing)
    assert code == 2 and f'config {missing}: _base_ file not found' in line, line
    failing = tmp_path / 'failing.py'
    failing.write_text("model = dict(backbone=dict(depth=undefined_name))\n")
    with pytest.raises(ValueError, match=f"config {failing}: NameError: name 'undefined_name'"):
        load_config(failing)


@pytest.mark.parametrize('args, fragment', [
    (['--opset', '99'], '--opset must be in 7..'),
    (['--opset', '6'], '--opset must be in 7..'),
    (['--atol', '-1'], 'argument --atol: expected a finite number >= 0'),
    (['--atol', 'nan'], 'argument --atol: expected a finite number >= 0'),
    (['--input-size', '100000', '100000'], 'argument --input-size: expected an image side of '
     'at most 8192 pixels'),
])
def test_export_arguments_are_checked_before_work(capsys, unbuildable, tmp_path, args, fragment):
    # The config cannot build: a message about it would mean the work started first.
    code, line = run_main(capsys, 'export', unbuildable, '-o', tmp_path / 'x.onnx', *args)
    assert code == 2
    assert line.startswith('mmbackbones export: error:') and fragment in line, line
    assert not (tmp_path / 'x.onnx').exists()


@pytest.mark.parametrize('command', ['info', 'bench', 'show'])
def test_huge_input_size_is_refused_by_every_command(capsys, unbuildable, tmp_path, command):
    extra = [tmp_path / 'img.png', '-o', tmp_path / 'o.png'] if command == 'show' else []
    if command == 'show':
        (tmp_path / 'img.png').write_bytes(b'')
    code, line = run_main(capsys, command, unbuildable, *extra, '--input-size', '8193', '64')
    assert code == 2 and 'at most 8192 pixels' in line, line


def test_convert_and_zoo_share_the_error_path(capsys, tmp_path):
    code, line = run_main(capsys, 'convert', tmp_path / 'none.pth', tmp_path / 'out.safetensors')
    assert code == 2 and line.startswith('mmbackbones convert: error: '), line
    assert 'not found' in line
    code, line = run_main(capsys, 'zoo', '--download', 'no-such-checkpoint')
    assert code == 2 and line.startswith('mmbackbones zoo: error: '), line
    # a KeyError's message, printed without the quotes str(KeyError) adds
    assert line.startswith("mmbackbones zoo: error: unknown checkpoint 'mmbackbones://no-such-"), \
        line


def test_download_without_network_is_an_environment_failure(tmp_path):
    """No network is not the user's mistake: exit code 1 and 'failed:', not 2 and 'error:'."""
    from tests.cli_helpers import run_cli
    offline = {'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9',
               'HTTP_PROXY': 'http://127.0.0.1:9', 'HTTPS_PROXY': 'http://127.0.0.1:9',
               'no_proxy': '', 'NO_PROXY': '', 'MMBACKBONES_HOME': str(tmp_path)}
    result = run_cli('zoo', '--download', 'mmcls://resnet18', env_extra=offline, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith('mmbackbones zoo: failed: could not download')
    assert 'Traceback' not in result.stderr


def test_environment_errors_exit_1_user_errors_exit_2(capsys):
    import urllib.error
    from types import SimpleNamespace

    from mmbackbones.cli.errors import run_command

    def raising(error):
        def func(args):
            raise error
        return func

    assert run_command('prog', raising(urllib.error.URLError('offline')), SimpleNamespace()) == 1
    assert 'prog: failed: <urlopen error offline>' in capsys.readouterr().err
    assert run_command('prog', raising(FileNotFoundError('no such file: x')),
                       SimpleNamespace()) == 2
    assert 'prog: error: no such file: x' in capsys.readouterr().err


def test_registered_types_are_model_names(capsys):
    """`list` shows ResNet, ConvNeXt, ...: every command that takes a model name takes them."""
    from mmbackbones.model_configs import load_model_config
    cfg = load_model_config('ConvNeXt')
    assert cfg.model.backbone == dict(type='ConvNeXt')
    code = main(['print-config', 'ConvNeXt'])
    assert code == 0 and "type='ConvNeXt'" in capsys.readouterr().out
    code, line = run_main(capsys, 'info', 'TIMMBackbone')  # a required argument: named
    assert code == 2
    assert line == ('mmbackbones info: error: TIMMBackbone (a registered type, built with its '
                    'defaults) needs model_name: give --cfg-options '
                    'model.backbone.model_name=... or write a config file'), line
    cfg = load_model_config('TIMMBackbone', {'model.backbone.model_name': 'resnet18'})
    assert cfg.model.backbone.model_name == 'resnet18'
