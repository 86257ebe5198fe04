from importlib import metadata

import pytest

from mmbackbones.utils import mmcv_check


def _fake_versions(monkeypatch, versions):
    def version(dist):
        if dist in versions:
            return versions[dist]
        raise metadata.PackageNotFoundError(dist)
    monkeypatch.setattr(mmcv_check.metadata, 'version', version)


def test_installed_mmcv_is_supported():
    assert mmcv_check.check_mmcv_version().startswith('2.')


def test_missing_mmcv_gives_one_clear_message(monkeypatch):
    _fake_versions(monkeypatch, {})
    with pytest.raises(ImportError, match=r'needs mmcv >= 2\.0\.0, < 2\.2\.0, but no mmcv is '
                                          r'installed\. Install a supported one'):
        mmcv_check.check_mmcv_version()


@pytest.mark.parametrize('dist, version', [('mmcv', '2.2.0'), ('mmcv-lite', '2.3.1'),
                                           ('mmcv-full', '1.7.2')])
def test_out_of_range_mmcv_is_named(monkeypatch, dist, version):
    _fake_versions(monkeypatch, {dist: version})
    with pytest.raises(ImportError, match=rf'but {dist}=={version} is installed'):
        mmcv_check.check_mmcv_version()


def test_full_mmcv_is_preferred_and_accepted(monkeypatch):
    _fake_versions(monkeypatch, {'mmcv': '2.1.0', 'mmcv-lite': '2.1.0'})
    assert mmcv_check.installed_mmcv() == ('mmcv', '2.1.0')
    with pytest.warns(UserWarning, match=r'mmcv==2\.1\.0 and mmcv-lite==2\.1\.0 are both '
                                         r'installed.*pip uninstall mmcv-lite'):
        assert mmcv_check.check_mmcv_version() == '2.1.0'


def test_one_distribution_does_not_warn(monkeypatch, recwarn):
    _fake_versions(monkeypatch, {'mmcv-lite': '2.1.0'})
    assert mmcv_check.check_mmcv_version() == '2.1.0'
    assert not [w for w in recwarn if 'both installed' in str(w.message)]


def test_real_mmcv_files_are_found():
    assert mmcv_check.mmcv_module_problem() == ''


def test_empty_shell_left_by_an_uninstall_is_reported(tmp_path, monkeypatch):
    """What `pip uninstall mmcv-lite` leaves of a full mmcv it was installed over: the folder
    with the compiled ops, no __init__.py; metadata still says mmcv is installed."""
    shell = tmp_path / 'mmcv'
    (shell / 'ops').mkdir(parents=True)
    (shell / '_ext.so').write_bytes(b'')
    assert 'empty shell' in mmcv_check.mmcv_module_problem([str(tmp_path)])
    (shell / '__init__.py').write_text('')
    assert 'mmcv.cnn is missing' in mmcv_check.mmcv_module_problem([str(tmp_path)])
    (shell / 'cnn').mkdir()
    (shell / 'cnn' / '__init__.py').write_text('')
    assert mmcv_check.mmcv_module_problem([str(tmp_path)]) == ''
    assert 'is missing' in mmcv_check.mmcv_module_problem([str(tmp_path / 'nothing')])

    _fake_versions(monkeypatch, {'mmcv': '2.1.0'})
    monkeypatch.setattr(mmcv_check, 'mmcv_module_problem',
                        lambda: 'the module mmcv has no __init__.py (an empty shell)')
    with pytest.raises(ImportError, match=r'mmcv==2\.1\.0 is recorded as installed, but the '
                                          r'module mmcv has no __init__.py.*--force-reinstall'):
        mmcv_check.check_mmcv_version()


def test_setup_does_not_require_mmcv(repo_root):
    """Installing mmbackbones must never pull mmcv-lite over a full mmcv (or the reverse)."""
    import os
    with open(os.path.join(repo_root, 'requirements', 'runtime.txt')) as f:
        lines = [line.split('#')[0].strip() for line in f]
    assert not [line for line in lines if line.startswith('mmcv')]
