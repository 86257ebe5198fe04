"""The reference pages of the documentation, generated from the code (no Sphinx needed here).

What is generated, and from where:

* one page per backbone family: every class registered in ``mmbackbones.MODELS`` whose module is
  ``mmbackbones.models.backbones.<family>`` (grouped by that module); the variant table comes from
  each class's ``arch_settings``; parameters, FLOPs at 224 px and the outputs' channels/strides
  from ``mmbackbones.analysis`` (the code behind ``mmbackbones info``); the shipped configs from
  ``configs/`` (``mmbackbones.model_configs``); the checkpoints from ``checkpoint/zoo.json``; the
  host twins from ``mmbackbones.registry.HOST_TWINS``; the picture from ``mmbackbones show``;
* the command line, one section per subcommand, from the argparse parser;
* the API of the public modules (``automodule`` directives Sphinx's autodoc fills in).

A family added by appending its import line to ``models/backbones/__init__.py`` gets its page
with nothing written for it. :func:`plan` is cheap (no model is built): ``tests/docs`` checks
with it that every registered family, zoo row and subcommand has a page.
"""
import hashlib
import inspect
import json
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAMILY_PACKAGE = 'mmbackbones.models.backbones.'
GENERATED = 'reference/generated'  # under docs/, rewritten at every build (not tracked)
FLOPS_SIZE = 224
PICTURE_SIZE = 128
PICTURE_IMAGE = os.path.join(REPO, 'demo', 'demo.png')
# The two contract switches that turn a pooled (N, C) output into feature maps (README: pooled
# outputs do not go into a neck); a family picture sets whichever its class takes.
FEATMAP_SWITCHES = {'out_type': 'featmap', 'gap_before_final_norm': False}
# Public modules whose API is documented from their docstrings (families are added by plan()).
API_MODULES = [
    ('Building', ['mmbackbones', 'mmbackbones.builder', 'mmbackbones.registry',
                  'mmbackbones.model_configs']),
    ('The backbone contract', ['mmbackbones.models.base', 'mmbackbones.models.wrapper',
                               'mmbackbones.models.layer_decay']),
    ('Necks', ['mmbackbones.models.necks.fpn', 'mmbackbones.models.necks.backbone_with_neck']),
    ('Checkpoints', ['mmbackbones.checkpoint', 'mmbackbones.checkpoint.zoo',
                     'mmbackbones.checkpoint.convert', 'mmbackbones.checkpoint.io',
                     'mmbackbones.checkpoint.download']),
    ('Integrations', ['mmbackbones.integrations', 'mmbackbones.integrations.detectron2',
                      'mmbackbones.integrations.fsdp', 'mmbackbones.detrex',
                      'mmbackbones.compat']),
    ('What the commands compute', ['mmbackbones.analysis.info', 'mmbackbones.analysis.featmap',
                                   'mmbackbones.analysis.complexity']),
]
# Packages whose members are defined in (and indexed from) their submodules: documented
# without a second index entry.
REEXPORTING = {'mmbackbones', 'mmbackbones.checkpoint', 'mmbackbones.integrations',
               'mmbackbones.integrations.detectron2', 'mmbackbones.detrex', 'mmbackbones.compat'}


@dataclass
class Page:
    """One generated page: ``path`` (under docs/, no suffix), its title, and what it covers
    (``classes``: registered type names; ``zoo``: zoo entry names; ``commands``: subcommands)."""
    path: str
    title: str
    kind: str
    family: Optional[str] = None
    classes: List[str] = field(default_factory=list)
    zoo: List[str] = field(default_factory=list)
    commands: List[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# What exists (cheap)


def registered_families() -> Dict[str, List[str]]:
    """``{family module name: [registered class names]}`` for every family module."""
    from mmbackbones.registry import MODELS, register_all_modules

    register_all_modules()
    families: Dict[str, List[str]] = {}
    for name in sorted(MODELS.known_names()):
        cls = MODELS.module_dict.get(name)
        module = getattr(cls, '__module__', '')
        if module.startswith(FAMILY_PACKAGE):
            families.setdefault(module[len(FAMILY_PACKAGE):], []).append(name)
    def order(family, name):  # the class named as its module first (ResNet), aliases last
        alias = MODELS.module_dict[name].__name__ != name
        return (alias, name.lower().replace('_', '') != family.replace('_', ''), name)

    for family, classes in families.items():
        classes.sort(key=lambda name: order(family, name))
    return families


def subcommands() -> List[str]:
    """The subcommands of ``mmbackbones`` as its parser knows them."""
    return list(_subparsers().keys())


def _subparsers():
    import argparse

    from mmbackbones.cli import build_parser

    parser = build_parser()
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def zoo_family(entry: dict, families: Dict[str, List[str]]) -> Optional[str]:
    arch_type = entry.get('arch', {}).get('type')
    for family, classes in families.items():
        if arch_type in classes:
            return family
    # a host twin's name (mmseg's BEiT, MAE): the row names its configs/<family> folder
    return entry.get('family') if entry.get('family') in families else None


def plan() -> List[Page]:
    """Every generated page and what it covers; builds no model."""
    from mmbackbones.checkpoint.zoo import load_zoo

    families = registered_families()
    zoo = load_zoo()
    pages = []
    for family, classes in families.items():
        pages.append(Page(f'{GENERATED}/families/{family}', _family_title(family, classes),
                          'family', family, classes,
                          [e['name'] for e in zoo if zoo_family(e, families) == family]))
    pages.append(Page(f'{GENERATED}/cli', 'The mmbackbones command', 'cli',
                      commands=subcommands()))
    pages.append(Page(f'{GENERATED}/zoo', 'All checkpoints', 'zoo',
                      zoo=[e['name'] for e in zoo]))
    pages.append(Page(f'{GENERATED}/api', 'API', 'api'))
    return pages


def _family_title(family: str, classes: List[str]) -> str:
    return ', '.join(classes) if len(classes) <= 3 else f'{classes[0]} family'


# --------------------------------------------------------------------------------------------
# Variant tables (the expensive part: models are built and traced, results cached)


def arch_argument(cls) -> Optional[str]:
    """The constructor argument that picks a row of ``arch_settings`` (``arch`` or ``depth``;
    mmseg's ``stdc_type`` for STDCNet)."""
    params = inspect.signature(cls.__init__).parameters
    for name in ('arch', 'depth', 'stdc_type'):
        if name in params:
            return name
    table = arch_table(cls)
    if table and all(isinstance(k, int) for k in table) and any(
            p.kind is p.VAR_KEYWORD for p in params.values()):
        return 'depth'  # passed on to the base class (mmpretrain's Res2Net(ResNet, **kwargs))
    return None


def arch_table(cls) -> Optional[dict]:
    """The class's variant table: ``arch_settings``, or ``arch_zoo`` (mmpretrain's name in
    Swin and ViT)."""
    for name in ('arch_settings', 'arch_zoo'):
        table = getattr(cls, name, None)
        if isinstance(table, dict) and table:
            return table
    return None


def variants(cls) -> List[List]:
    """``[[key, aliases...], ...]``: the rows of ``arch_settings``, aliases of one setting
    (``'t'``/``'tiny'``) grouped under the longest name."""
    table = arch_table(cls)
    if not table:
        return []
    groups: List[List] = []
    for key, value in table.items():
        for group in groups:
            if table[group[0]] == value:
                group.append(key)
                break
        else:
            groups.append([key])
    return [sorted(g, key=lambda k: (-len(str(k)), str(k))) for g in groups]


def measure(cls_name: str, arg: str, key, size: int = FLOPS_SIZE) -> dict:
    """Params, FLOPs at ``size`` px and declared outputs of ``dict(type=cls_name, arg=key)``.

    The steps of ``mmbackbones info`` (``mmbackbones.analysis``): ``build_from_config`` of the
    registered type with ``--cfg-options``, ``count_params``, ``count_flops`` of one
    ``make_input`` image; the declared outputs (``info`` checks them against the forward).
    """
    from mmbackbones.analysis.common import build_from_config, count_params, make_input
    from mmbackbones.analysis.complexity import count_flops

    _, _, model = build_from_config(cls_name, {f'model.backbone.{arg}': key})
    total, _ = count_params(model)
    flops, _ = count_flops(model, make_input(model, (size, size)))
    return dict(params=total, flops=flops, names=list(model.out_names),
                channels=[int(c) for c in model.out_channels],
                strides=[None if s is None else int(s) for s in model.out_strides])


def _cache_key(cls, arg, key) -> str:
    source = inspect.getsourcefile(cls)
    with open(source, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return f'{cls.__name__}:{arg}={key}:{digest}'


VARIANTS_FILE = os.path.join(REPO, 'docs', 'reference', 'variants.json')


class VariantCache:
    """Measured variants kept across builds in ``docs/reference/variants.json`` (tracked, so a
    fresh checkout builds in seconds), keyed by the class, the variant and the family file's
    hash: a new or edited family is measured at the next build and the file is rewritten
    (entries no longer looked up are dropped); commit it with the family."""

    def __init__(self, path: Optional[str]):
        self.path = path
        self.used = set()
        self.data = {}
        if path and os.path.isfile(path):
            with open(path) as f:
                self.data = json.load(f)

    def get(self, cls, arg, key) -> dict:
        cache_key = _cache_key(cls, arg, key)
        self.used.add(cache_key)
        if cache_key not in self.data:
            self.data[cache_key] = measure(cls.__name__, arg, key)
        return self.data[cache_key]

    def prune(self, keys) -> None:
        """Forget the entries not looked up in this build (a family file that changed)."""
        self.data = {k: v for k, v in self.data.items() if k in keys}

    def save(self):
        if self.path:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path, 'w') as f:
                json.dump(self.data, f, indent=0, sort_keys=True)


# --------------------------------------------------------------------------------------------
# Rendering


def _num(value: float, unit: str) -> str:
    return f'{value / 1e6:.1f} M' if unit == 'M' else f'{value / 1e9:.2f} G'


def _outputs(info: dict) -> str:
    parts = []
    for name, ch, stride in zip(info['names'], info['channels'], info['strides']):
        parts.append(f'{name} {ch}' + (f' /{stride}' if stride else ' (pooled)'))
    return ', '.join(parts)


def _md_escape(text: str) -> str:
    return str(text).replace('|', '\\|')


_CONFIG_TYPES: List[dict] = []


def shipped_configs(classes: List[str]) -> List[dict]:
    """Shipped configs (model names) whose backbone type is one of ``classes`` (every config is
    read once per build)."""
    from mmbackbones.analysis.common import load_backbone_config
    from mmbackbones.analysis.listing import config_names

    if not _CONFIG_TYPES:
        for row in config_names():
            if row['file'].startswith(('downstream/', '_base_/')):
                continue
            try:
                _, backbone_cfg = load_backbone_config(row['name'])
            except Exception:  # noqa: BLE001 - not a backbone config: on no family page
                continue
            _CONFIG_TYPES.append(dict(row, type=backbone_cfg.get('type')))
    return [row for row in _CONFIG_TYPES if row['type'] in classes]


def twins_of(classes: List[str]) -> List[tuple]:
    """``(type users write, twin class)`` of the host twins standing in for ``classes``."""
    from mmbackbones.registry import HOST_TWINS

    rows = []
    for scope, registry in HOST_TWINS.items():
        for name in sorted(registry.module_dict):
            if name in classes:
                rows.append((f'mmbackbones.{scope}.{name}', registry.module_dict[name]))
    return rows


def render_family(page: Page, cache: VariantCache, images_dir: str) -> str:
    from mmbackbones.checkpoint.zoo import format_result, load_zoo
    from mmbackbones.registry import MODELS

    lines = [f'# {page.title}', '']
    module = FAMILY_PACKAGE + page.family
    lines += [f'Registered types: {", ".join(f"`{c}`" for c in page.classes)} '
              f'(module `{module}`; write `type=\'<name>\'`, or `mmcls.<name>` in an mmdet/mmseg '
              'config). Generated from the code at build time.', '']
    picture = draw_picture(page, images_dir)
    if picture:
        lines += ['## Feature maps', '',
                  f'`mmbackbones show {picture["command"]}` (random weights, seed 0, '
                  f'{PICTURE_SIZE} px; each panel: the first three principal components of the '
                  'channels as RGB):', '',
                  f'![feature maps of {picture["name"]}](../_images/{picture["file"]})', '']
    seen = {}
    for name in page.classes:
        cls = MODELS.module_dict[name]
        if cls in seen:  # one class under two names
            lines += [f'## `{name}`', '', f'Another name of `{seen[cls]}`.', '']
            continue
        seen[cls] = name
        summary = (inspect.getdoc(cls) or '').split('\n\n')[0].replace('\n', ' ')
        lines += [f'## `{name}`', '', summary, '']
        arg = arch_argument(cls)
        groups = variants(cls)
        if arg and groups:
            lines += [f'Variants (`{arg}=`): parameters, FLOPs of one {FLOPS_SIZE}x{FLOPS_SIZE}'
                      ' image (multiply-adds, as `mmbackbones info` counts them) and the '
                      'default outputs (name, channels, stride):', '',
                      f'| `{arg}` | params | FLOPs @{FLOPS_SIZE} | outputs |', '|---|---|---|---|']
            for group in groups:
                info = cache.get(cls, arg, group[0])
                keys = ' / '.join(f'`{k!r}`' if not isinstance(k, str) else f"`'{k}'`"
                                  for k in group)
                lines.append(f'| {keys} | {_num(info["params"], "M")} | '
                             f'{_num(info["flops"], "G")} | {_outputs(info)} |')
            lines.append('')
        lines += [f'API: {{py:class}}`{cls.__module__}.{name}`.', '']
    twins = twins_of(page.classes)
    if twins:
        lines += ['## Host twins', '', 'Types taking mmdet\'s / mmseg\'s own signature and '
                  'defaults, building the same core module (see the mmdet/mmseg guide):', '',
                  '| type | class |', '|---|---|']
        lines += [f'| `{t}` | `{c.__module__}.{c.__name__}` |' for t, c in twins]
        lines.append('')
    configs = shipped_configs(page.classes)
    if configs:
        lines += ['## Shipped configs', '', 'Use the name wherever a config file is taken '
                  '(`mmbackbones info NAME`), or `_base_ = \'mmbackbones::FILE\'`:', '',
                  '| name | file | type |', '|---|---|---|']
        lines += [f'| `{r["name"]}` | `configs/{r["file"]}` | `{r["type"]}` |' for r in configs]
        lines.append('')
    entries = [e for e in load_zoo() if e['name'] in page.zoo]
    if entries:
        lines += ['## Checkpoints', '', 'From `mmbackbones/checkpoint/zoo.json` (`mmbackbones zoo`'
                  '): load with `init_cfg=dict(type=\'Pretrained\', checkpoint=\'<source>://'
                  '<name>\')`; the layout is converted on load. `config` is the shipped config '
                  'the weights fit, with `arch` on top.', '',
                  '| name | source | task | result | config | arch |',
                  '|---|---|---|---|---|---|']
        for e in entries:
            arch = ', '.join(f'{k}={v!r}' for k, v in e['arch'].items())
            lines.append(f'| `{e["source"]}://{e["name"]}` | {e["source"]} | {e["task"]} | '
                         f'{format_result(e)} | `{e.get("config") or ""}` | '
                         f'{_md_escape(arch)} |')
        lines.append('')
    return '\n'.join(lines)


def picture_settings(page: Page) -> Optional[dict]:
    """The class the family's picture is drawn from: its first class with a variant table."""
    from mmbackbones.models.wrapper import WrapperBackbone
    from mmbackbones.registry import MODELS

    eligible = []
    for name in page.classes:
        cls = MODELS.module_dict[name]
        if 'mask' in inspect.signature(cls.forward).parameters:
            continue  # a pre-training encoder (MAEViT): its default forward masks patches
        if not issubclass(cls, WrapperBackbone):  # a wrapper (TIMMBackbone) has no net of its own
            eligible.append(dict(name=name, cls=cls))
    # a class without a table may need a nested config (STDC's context path: backbone_cfg)
    with_table = [e for e in eligible if arch_table(e['cls'])]
    return (with_table or eligible or [None])[0]


def spread_out_indices(num_stages: int, count: int = 4) -> tuple:
    """Up to ``count`` stage indices spread to the last one: 4 -> (0, 1, 2, 3), 12 ->
    (2, 5, 8, 11)."""
    count = min(count, num_stages)
    return tuple(sorted({(i + 1) * num_stages // count - 1 for i in range(count)}))


def draw_picture(page: Page, images_dir: str) -> Optional[dict]:
    """Run ``mmbackbones show`` (the CLI's own entry point) for the family's first class."""
    settings = picture_settings(page)
    if settings is None:
        return None
    from mmbackbones.cli import main

    cls, name = settings['cls'], settings['name']
    options = {}
    arg, groups = arch_argument(cls), variants(cls)
    if arg and groups:
        options[f'model.backbone.{arg}'] = _smallest(cls, arg, groups)
    model = _meta_model(name, options)
    for key, value in FEATMAP_SWITCHES.items():  # pooled outputs drawn as maps
        if hasattr(model, key):
            options[f'model.backbone.{key}'] = value
    num_stages = getattr(model, 'num_stages', None)
    if not isinstance(num_stages, int) and hasattr(model, 'stem_and_stages'):
        num_stages = len(model.stem_and_stages()) - 1  # entry 0 is the stem
    if hasattr(model, 'out_indices') and isinstance(num_stages, int) and num_stages > 0:
        options['model.backbone.out_indices'] = spread_out_indices(num_stages)  # every stage
    os.makedirs(images_dir, exist_ok=True)
    out = os.path.join(images_dir, f'{page.family}.png')
    cfg_options = [f'{k}={v!r}' if isinstance(v, str) else f'{k}={v}'
                   for k, v in options.items()]
    argv = [name, PICTURE_IMAGE, '-o', out, '--input-size', str(PICTURE_SIZE),
            str(PICTURE_SIZE), '--panel-size', str(PICTURE_SIZE)]
    if cfg_options:
        argv += ['--cfg-options', *cfg_options]
    code = main(['show', *argv])
    if code != 0:
        raise RuntimeError(f'mmbackbones show {" ".join(argv)} exited with {code}')
    shown = shlex.join(a if a not in (PICTURE_IMAGE, out) else
                       ('demo/demo.png' if a == PICTURE_IMAGE else f'{page.family}.png')
                       for a in argv)
    return dict(name=name, file=f'{page.family}.png', command=shown)


def _meta_model(cls_name: str, options: dict):
    """The model a registered type and ``--cfg-options`` build, on the meta device (no
    memory, nothing initialised) where its constructor allows, else on the CPU."""
    import torch

    from mmbackbones.analysis.common import load_backbone_config
    from mmbackbones.builder import build_backbone

    _, backbone_cfg = load_backbone_config(cls_name, options)
    try:
        with torch.device('meta'):
            return build_backbone(backbone_cfg)
    except NotImplementedError:  # a constructor that reads a tensor's values (.tolist())
        torch.manual_seed(0)
        return build_backbone(backbone_cfg)


def _smallest(cls, arg, groups):
    """The variant with the fewest parameters (counted on the meta device, nothing run)."""
    from mmbackbones.analysis.common import count_params

    counts = [(count_params(_meta_model(cls.__name__, {f'model.backbone.{arg}': g[0]}))[0],
               i) for i, g in enumerate(groups)]
    return groups[min(counts)[1]][0]


def render_cli(page: Page) -> str:
    """One section per subcommand: its help line and ``--help`` as the parser prints it."""
    import os as _os

    from mmbackbones.cli import build_parser

    _os.environ.setdefault('COLUMNS', '100')
    parser = build_parser()
    lines = ['# The `mmbackbones` command', '', 'Generated from the argparse parser '
             '(`mmbackbones.cli.parser`) at build time; `mmbackbones COMMAND --help` prints the '
             'same. A user error prints one line and exits with code 2; any other failure one '
             'line and code 1 (`--debug` shows the traceback). Usage: '
             '[the CLI guide](../../cli.md).',
             '', '```text', parser.format_help().rstrip(), '```', '']
    for name, sub in _subparsers().items():
        lines += [f'## `{name}`', '', '```text', sub.format_help().rstrip(), '```', '']
    return '\n'.join(lines)


def render_zoo(page: Page, families: Dict[str, List[str]]) -> str:
    from mmbackbones.checkpoint.zoo import format_result, load_zoo

    lines = ['# All checkpoints', '', 'Every row of `mmbackbones/checkpoint/zoo.json`, by family '
             '(the family pages add the variants and configs). `task`: what the published '
             'result measures (classification: ImageNet-1k top-1; detection: COCO box AP; '
             'segmentation: mIoU; pretraining: none published). Detector and segmentor rows are '
             'whole-model checkpoints of which the backbone (under `backbone.`) is loaded.', '',
             '| name | source | type | task | result | config | family |',
             '|---|---|---|---|---|---|---|']
    for e in load_zoo():
        family = zoo_family(e, families)
        link = f'[{family}](families/{family}.md)' if family else ''
        lines.append(f'| `{e["name"]}` | {e["source"]} | `{e["arch"].get("type", "")}` | '
                     f'{e["task"]} | {format_result(e)} | `{e.get("config") or ""}` | {link} |')
    return '\n'.join(lines) + '\n'


def render_api(page: Page, families: Dict[str, List[str]]) -> str:
    lines = ['# API', '', 'From the docstrings (Google style), at build time.', '']
    groups = list(API_MODULES) + [('Families', [FAMILY_PACKAGE + f for f in families])]
    for title, modules in groups:
        lines += [f'## {title}', '']
        for module in modules:
            options = ['   :members:'] + (['   :no-index:'] if module in REEXPORTING else [])
            lines += [f'### `{module}`', '', '```{eval-rst}', f'.. automodule:: {module}',
                      *options, '```', '']
    return '\n'.join(line for line in lines if line is not None)


def render_index(pages: List[Page]) -> str:
    lines = ['# Reference', '', 'Generated from the code at every build.', '', '```{toctree}',
             ':maxdepth: 1', '', 'zoo', 'cli', 'api']
    lines += [p.path[len(GENERATED) + 1:] for p in pages if p.kind == 'family']
    lines += ['```', '']
    return '\n'.join(lines)


def write_all(docs_dir: str, cache_path: Optional[str] = VARIANTS_FILE, log=print) -> List[str]:
    """Write every generated page (and picture) under ``docs_dir/reference/generated``."""
    start = time.time()
    pages = plan()
    families = {p.family: p.classes for p in pages if p.kind == 'family'}
    root = os.path.join(docs_dir, GENERATED)
    images = os.path.join(root, '_images')
    os.makedirs(os.path.join(root, 'families'), exist_ok=True)
    cache = VariantCache(cache_path)
    written = []
    try:
        for page in pages:
            if page.kind == 'family':
                try:
                    text = render_family(page, cache, images)
                except Exception as error:
                    classes = ', '.join(page.classes)
                    raise RuntimeError(f'the page of family {page.family!r} ({classes}) could '
                                       f'not be generated: {type(error).__name__}: {error}'
                                       ) from error
            elif page.kind == 'cli':
                text = render_cli(page)
            elif page.kind == 'zoo':
                text = render_zoo(page, families)
            else:
                text = render_api(page, families)
            path = os.path.join(docs_dir, page.path + '.md')
            _write_if_changed(path, text)
            cache.save()  # measured variants survive an interrupted build
            written.append(path)
            log(f'mmbdocs: {page.path} ({time.time() - start:.1f} s)')
        cache.prune(cache.used)
    finally:
        cache.save()
    index = os.path.join(root, 'index.md')
    _write_if_changed(index, render_index(pages))
    written.append(index)
    return written


def _write_if_changed(path: str, text: str) -> None:
    """Leave an unchanged page's mtime alone, so Sphinx re-reads only what changed."""
    if os.path.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, 'w') as f:
        f.write(text)
