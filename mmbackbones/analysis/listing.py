"""``mmbackbones list``: registered backbone types and the timm/torchvision models we wrap."""
import fnmatch
from typing import Iterable, List, Optional


def as_glob(pattern: Optional[str]) -> str:
    """A pattern without wildcards matches as a substring: ``resnet`` means ``*resnet*``."""
    if not pattern:
        return '*'
    if any(ch in pattern for ch in '*?['):
        return pattern
    return f'*{pattern}*'


def match(names: Iterable[str], pattern: Optional[str]) -> List[str]:
    glob = as_glob(pattern).lower()
    return sorted(n for n in names if fnmatch.fnmatchcase(n.lower(), glob))


def registered_types(pattern: Optional[str] = None) -> List[dict]:
    """Types of ``mmbackbones.MODELS`` (every lazy location imported) with their module."""
    from ..registry import MODELS

    names = MODELS.known_names()
    rows = []
    for name in match(names, pattern):
        cls = MODELS.module_dict.get(name)
        rows.append(dict(name=name, module=getattr(cls, '__module__', '?')))
    return rows


def timm_models(pattern: Optional[str] = None) -> List[str]:
    """timm model names that ``TIMMBackbone`` can wrap."""
    from ..models.backbones.timm_backbone import list_timm_models

    return sorted(list_timm_models(as_glob(pattern)))


def torchvision_models(pattern: Optional[str] = None) -> List[str]:
    """torchvision model names that ``TorchvisionBackbone`` can wrap."""
    from ..models.backbones.torchvision_backbone import list_torchvision_models

    return sorted(list_torchvision_models(as_glob(pattern)))


def config_names(pattern: Optional[str] = None) -> List[dict]:
    """Shipped configs by model name (plain names only), with their file under ``configs/``."""
    import os

    from ..model_configs import config_root, model_names

    root = config_root()
    names = {n: p for n, p in model_names().items() if '/' not in n}
    return [dict(name=n, file=os.path.relpath(names[n], root).replace(os.sep, '/'))
            for n in match(names, pattern)]


def pretrained(pattern: Optional[str] = None) -> List[dict]:
    """Zoo entries whose name, alias, arch type or config match ``pattern``."""
    from ..checkpoint.zoo import format_result, load_zoo

    glob = as_glob(pattern).lower()
    rows = []
    for e in load_zoo():
        fields = [e['name'], *e.get('aliases', []), e['arch'].get('type', ''),
                  e.get('config') or '']
        if any(fnmatch.fnmatchcase(str(f).lower(), glob) for f in fields):
            rows.append(dict(name=e['name'], source=e['source'], config=e.get('config'),
                             top1=e.get('top1'), task=e['task'], dataset=e.get('dataset'),
                             metric=e['metric'], score=e['score'], result=format_result(e),
                             url=e['url']))
    return rows


def print_configs(console, rows, pattern: str) -> None:
    from rich.table import Table

    table = Table(title=f'Shipped configs{pattern}: {len(rows)} (use the name in place of a '
                  'config file, or _base_ = \'mmbackbones::<file>\')')
    table.add_column('name', style='bold')
    table.add_column('file')
    for row in rows:
        table.add_row(row['name'], row['file'])
    console.print(table)


def print_pretrained(console, rows, pattern: str) -> None:
    from rich.table import Table

    table = Table(title=f'Pretrained weights{pattern}: {len(rows)} (init_cfg=dict(type='
                  "'Pretrained', checkpoint='<source>://<name>'); cache: $MMBACKBONES_HOME)")
    for column, justify in (('name', 'left'), ('source', 'left'), ('config', 'left'),
                            ('task', 'left'), ('result', 'right')):
        table.add_column(column, justify=justify, style='bold' if column == 'name' else None)
    for row in rows:
        table.add_row(row['name'], row['source'], row['config'] or '', row['task'],
                      row['result'])
    console.print(table)
