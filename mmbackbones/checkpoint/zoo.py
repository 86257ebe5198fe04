"""The model zoo: known checkpoints (``zoo.json``) and how zoo names resolve.

Names users write:

* ``mmbackbones://<name>``: any entry, by name or alias (the first listed wins:
  ``mmbackbones://resnet50`` is the mmcls ResNet-50, 76.55 top-1);
* ``mmcls://<name>``, ``torchvision://<name>``, ``timm://<name>``: an entry of that source.
  Names the file does not list fall back to what the source itself knows: mmengine's mmcls
  table, torchvision's weight enums, timm's pretrained configs (Hugging Face hub files).
"""
import fnmatch
import json
import os
from typing import Dict, List, Optional

__all__ = ['load_zoo', 'list_zoo', 'get_entry', 'resolve', 'format_zoo_table', 'ZOO_SCHEMES',
           'split_scheme']

ZOO_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'zoo.json')
ZOO_SCHEMES = ('mmbackbones', 'mmcls', 'torchvision', 'timm')
_ZOO: List[dict] = []


def load_zoo() -> List[dict]:
    """Every entry of ``zoo.json`` (a list of dicts; read once)."""
    if not _ZOO:
        with open(ZOO_FILE) as f:
            _ZOO.extend(json.load(f)['checkpoints'])
    return [dict(e) for e in _ZOO]


def _names(entry: dict) -> List[str]:
    return [entry['name'], *entry.get('aliases', [])]


def list_zoo(pattern: Optional[str] = None, source: Optional[str] = None) -> List[dict]:
    """Entries whose name, an alias or the arch type match ``pattern`` (a glob such as
    ``'resnet50*'``, or a plain substring; case-insensitive), optionally of one ``source``."""
    entries = load_zoo()
    if source:
        entries = [e for e in entries if e['source'] == source]
    if not pattern:
        return entries
    pat = pattern.lower()
    glob = any(c in pat for c in '*?[')
    out = []
    for e in entries:
        fields = [n.lower() for n in _names(e)] + [str(e['arch'].get('type', '')).lower()]
        if any(fnmatch.fnmatchcase(f, pat) if glob else pat in f for f in fields):
            out.append(e)
    return out


def split_scheme(uri: str):
    """``'mmcls://resnet50'`` -> ``('mmcls', 'resnet50')``; ``(None, uri)`` otherwise."""
    if isinstance(uri, str) and '://' in uri:
        scheme, name = uri.split('://', 1)
        if scheme in ZOO_SCHEMES:
            return scheme, name
    return None, uri


def get_entry(name: str, source: Optional[str] = None) -> Optional[dict]:
    """The first entry named or aliased ``name`` (of ``source`` when given), else None."""
    for e in load_zoo():
        if (source is None or e['source'] == source) and name in _names(e):
            return e
    return None


def _fallback(scheme: str, name: str) -> Optional[dict]:
    """Entries the source knows although zoo.json does not list them."""
    if scheme == 'mmcls':
        import mmengine
        path = os.path.join(mmengine.__path__[0], 'hub', 'mmcls.json')
        with open(path) as f:
            urls = json.load(f)
        if name in urls:
            return dict(name=name, aliases=[], source='mmcls', format='mmpretrain',
                        prefix='backbone.', arch={}, url=urls[name], sha256=None, top1=None)
    elif scheme == 'torchvision':
        from mmengine.runner.checkpoint import get_torchvision_models
        urls = get_torchvision_models()
        if name in urls:
            return dict(name=name, aliases=[], source='torchvision', format='torchvision',
                        prefix=None, arch={}, url=urls[name], sha256=None, top1=None)
    elif scheme == 'timm':
        try:
            import timm
            cfg = timm.models.get_pretrained_cfg(name)
        except Exception:  # noqa: BLE001 - unknown to timm (or timm absent): not found
            cfg = None
        if cfg is not None:
            if getattr(cfg, 'hf_hub_id', None):
                url = f'https://huggingface.co/{cfg.hf_hub_id}/resolve/main/model.safetensors'
            else:
                url = getattr(cfg, 'url', None)
            if url:
                return dict(name=name, aliases=[], source='timm', format='timm', prefix=None,
                            arch={}, url=url, sha256=None, top1=None)
    return None


def resolve(uri: str) -> dict:
    """The zoo entry a ``scheme://name`` refers to. Raises ``KeyError`` with close names."""
    scheme, name = split_scheme(uri)
    if scheme is None:
        raise KeyError(f'{uri!r} is not a zoo name (expected one of '
                       f'{", ".join(s + "://" for s in ZOO_SCHEMES)})')
    source = None if scheme == 'mmbackbones' else scheme
    entry = get_entry(name, source)
    if entry is None and source is not None:
        entry = _fallback(scheme, name)
    if entry is None:
        import difflib
        known = sorted({n for e in load_zoo() if source in (None, e['source'])
                        for n in _names(e)})
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        raise KeyError(f'unknown checkpoint {uri!r}.{hint} (run `mmbackbones zoo` to list the '
                       f'known ones)')
    return entry


def format_zoo_table(entries: List[dict]) -> str:
    """A plain-text table of entries (what ``mmbackbones zoo`` prints)."""
    rows = [('name', 'source', 'arch', 'top-1', 'url')]
    for e in entries:
        arch = ', '.join(f'{k}={v}' for k, v in e['arch'].items())
        top1 = '' if e.get('top1') is None else f'{e["top1"]:.2f}'
        rows.append((e['name'], e['source'], arch, top1, e['url']))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ['  '.join(r[i].ljust(widths[i]) for i in range(4)) + '  ' + r[4] for r in rows]
    return '\n'.join(lines)


def zoo_entry_summary(entry: Dict) -> str:
    return f'{entry["source"]}://{entry["name"]} ({entry["url"]})'


def add_zoo_args(parser):
    """Add the ``zoo`` command's arguments to ``parser`` (used by ``mmbackbones zoo``)."""
    parser.add_argument('pattern', nargs='?', default=None,
                        help="glob or substring of a name, alias or arch type ('resnet50*')")
    parser.add_argument('--source', choices=['mmcls', 'torchvision', 'timm'], default=None,
                        help='only entries of this source')
    parser.add_argument('--json', action='store_true', help='print the entries as JSON')
    parser.add_argument('--download', metavar='NAME', default=None,
                        help='download one entry (scheme://name or a name) into the cache and '
                             'print its path')
    return parser


def run_zoo(args) -> int:
    """Run the ``zoo`` command for parsed ``args``; returns the exit code."""
    import sys
    if args.download:
        from .download import ChecksumError, DownloadError, download
        uri = args.download if '://' in args.download else f'mmbackbones://{args.download}'
        try:
            entry = resolve(uri)
            print(download(entry['url'], sha256=entry.get('sha256')))
        except (DownloadError, ChecksumError) as e:
            from ..analysis.common import CLIError
            raise CLIError(str(e)) from e
        return 0
    entries = list_zoo(args.pattern, args.source)
    if args.json:
        print(json.dumps(entries, indent=1))
    elif entries:
        print(format_zoo_table(entries))
    else:
        print(f'no checkpoint matches {args.pattern!r} (run without a pattern to list all)',
              file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog='zoo', description='List known checkpoints.')
    add_zoo_args(parser)
    from ..cli_errors import run_command  # the error path every command shares
    return run_command(parser.prog, run_zoo, parser.parse_args(argv))
