"""The model zoo: known checkpoints (``zoo.json``) and how zoo names resolve.

Names users write:

* ``mmbackbones://<name>``: any entry, by name or alias (the first listed wins:
  ``mmbackbones://resnet50`` is the mmcls ResNet-50, 76.55 top-1);
* ``mmcls://<name>``, ``torchvision://<name>``, ``timm://<name>``, ``mmdet://<name>``,
  ``mmseg://<name>``, ``official://<name>``: an entry of that source. Names the file does not
  list fall back to what the source itself knows: mmengine's mmcls table, torchvision's weight
  enums, timm's pretrained configs (Hugging Face hub files).

What a row was measured on (:data:`TASKS`): ``task`` (``'classification'`` when absent),
``dataset``, ``metric`` and ``score``. A classification row measures ``'top1'`` on ImageNet-1k
and keeps its value in ``top1`` too (what readers written before ``task`` existed read); a
detection row ``'box_AP'`` on COCO, a segmentation row ``'mIoU'`` on ADE20K, Cityscapes, ...;
a pre-training row (self-supervised, masked-image modelling, a backbone trained only to start
detectors from) has no metric. Detector and segmentor rows are whole-model checkpoints: their
``prefix`` (``'backbone.'``) says where the backbone is, and only that part is loaded.
"""
import fnmatch
import json
import os
from typing import List, Optional

__all__ = ['load_zoo', 'list_zoo', 'get_entry', 'resolve', 'format_zoo_table', 'ZOO_SCHEMES',
           'ZOO_SOURCES', 'TASKS', 'check_entry', 'with_task', 'format_result', 'split_scheme',
           'pretrained_for']

ZOO_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'zoo.json')
ZOO_SOURCES = ('mmcls', 'torchvision', 'timm', 'mmdet', 'mmseg', 'official')
ZOO_SCHEMES = ('mmbackbones', ) + ZOO_SOURCES
# task -> the metric its rows report and the datasets it is reported on (None: any dataset)
TASKS = {
    'classification': dict(metric='top1', datasets=('ImageNet-1k', )),
    'detection': dict(metric='box_AP', datasets=('COCO', )),
    'segmentation': dict(metric='mIoU', datasets=('ADE20K', 'Cityscapes', 'Pascal VOC 2012 + Aug',
                                                  'Pascal Context', 'COCO-Stuff 164k')),
    'pretraining': dict(metric=None, datasets=None),
}
# where a metric is plausible (the lowest published top-1: MobileNetV3-Small-0.5, 57.9)
SCORE_RANGES = {'top1': (55.0, 92.0), 'box_AP': (15.0, 70.0), 'mIoU': (15.0, 90.0)}
_ZOO: List[dict] = []


def with_task(entry: dict) -> dict:
    """``entry`` with ``task``, ``metric`` and ``score`` filled where the row leaves them out:
    a row without ``task`` is a classification row, its score its ``top1``."""
    e = dict(entry)
    e.setdefault('task', 'classification')
    spec = TASKS.get(e['task'])
    e.setdefault('metric', spec['metric'] if spec else None)
    if e['task'] == 'classification':
        e.setdefault('score', e.get('top1'))
    e.setdefault('score', None)
    e.setdefault('top1', None)
    return e


def check_entry(entry: dict) -> dict:
    """Refuse a row whose task, metric, dataset and scores disagree (``ValueError`` naming the
    row, the field, its value and what is allowed); returns the row with :func:`with_task`'s
    defaults."""
    e = with_task(entry)
    name = e.get('name', '?')
    task, metric, dataset, score = e['task'], e['metric'], e.get('dataset'), e['score']
    if task not in TASKS:
        raise ValueError(f'zoo row {name!r}: task must be one of {", ".join(map(repr, TASKS))}, '
                         f'got {task!r}')
    spec = TASKS[task]
    if metric != spec['metric']:
        raise ValueError(f'zoo row {name!r}: a {task} row reports metric {spec["metric"]!r}, '
                         f'got metric {metric!r}')
    if spec['datasets'] is not None and dataset not in spec['datasets']:
        raise ValueError(f'zoo row {name!r}: a {task} row is measured on '
                         f'{" or ".join(spec["datasets"])}, got dataset {dataset!r}')
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f'zoo row {name!r}: dataset must name what the weights were trained on, '
                         f'got {dataset!r}')
    if metric is None:
        if score is not None:
            raise ValueError(f'zoo row {name!r}: a {task} row has no metric, so score must be '
                             f'null, got {score!r}')
    else:
        low, high = SCORE_RANGES[metric]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or \
                not low < score < high:
            raise ValueError(f'zoo row {name!r}: {metric} must be a number in ({low}, {high}) '
                             f'as published, got {score!r}')
    top1 = e['top1']
    if task == 'classification' and top1 != score:
        raise ValueError(f'zoo row {name!r}: top1 is the ImageNet-1k top-1 of a classification '
                         f'row and must equal its score, got top1={top1!r}, score={score!r}')
    if task != 'classification' and top1 is not None:
        raise ValueError(f'zoo row {name!r}: top1 means ImageNet-1k top-1 of a classification '
                         f'row; a {task} row has top1 null (its result is score), got {top1!r}')
    return e


def load_zoo() -> List[dict]:
    """Every entry of ``zoo.json`` (a list of dicts, each checked by :func:`check_entry` and
    with its defaults filled; read once)."""
    if not _ZOO:
        with open(ZOO_FILE) as f:
            rows = json.load(f)['checkpoints']
        _ZOO.extend(check_entry(e) for e in rows)
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
    """Entries the source knows although zoo.json does not list them (classification weights
    whose top-1 is not recorded here)."""
    entry = _fallback_entry(scheme, name)
    return with_task(dict(entry, dataset='ImageNet-1k')) if entry else None


def _fallback_entry(scheme: str, name: str) -> Optional[dict]:
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


def format_result(entry: dict) -> str:
    """What a row was measured as, in one cell: ``'top1 76.55'``, ``'box_AP 40.20 (COCO)'``,
    ``'mIoU 77.19 (Cityscapes)'``; a pre-training row: ``'pretraining (LVD-142M)'``."""
    e = with_task(entry)
    if e['metric'] is None or e['score'] is None:
        return f'pretrained on {e.get("dataset") or "?"}' if e['task'] != 'classification' else ''
    where = '' if e['task'] == 'classification' else f' ({e.get("dataset")})'
    return f'{e["metric"]} {e["score"]:.2f}{where}'


def format_zoo_table(entries: List[dict]) -> str:
    """A plain-text table of entries (what ``mmbackbones zoo`` prints)."""
    rows = [('name', 'source', 'arch', 'task', 'result', 'url')]
    for e in entries:
        arch = ', '.join(f'{k}={v}' for k, v in e['arch'].items())
        rows.append((e['name'], e['source'], arch, with_task(e)['task'], format_result(e),
                     e['url']))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ['  '.join(r[i].ljust(widths[i]) for i in range(5)) + '  ' + r[5] for r in rows]
    return '\n'.join(lines)


def pretrained_for(config_name: str) -> List[dict]:
    """Zoo entries whose weights fit the shipped config ``config_name`` (a model name such as
    ``'convnext-tiny'``; the entry's ``arch`` keys go on top of that config)."""
    return [e for e in load_zoo() if e.get('config') == config_name]
