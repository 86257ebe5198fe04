"""``init_weights()`` reports in one line.

mmengine's ``BaseModule.init_weights()`` ends, on the top-level module, with
``_dump_init_info()``: one INFO record per parameter (641 lines for a ResNet-50) unless the
current logger has a file handler. :class:`InitReportMixin` replaces that with one INFO line
(how many tensors were initialised how) and keeps the per-parameter detail at DEBUG level
(``MMLogger.get_current_instance().setLevel('DEBUG')`` shows it); with a file handler (an
mmengine ``Runner``) the file still gets mmengine's full dump.
"""
import logging
from collections import Counter
from logging import FileHandler

from mmengine.logging import MMLogger, print_log

SAME = 'The value is the same before and after calling `init_weights`'


def _label(info: str) -> str:
    info = ' '.join(str(info).split())
    if info.startswith(SAME):
        return 'kept their constructor values'
    if info.startswith('PretrainedInit') or 'load from' in info:
        return info.replace('PretrainedInit: ', '')
    return info.split(':')[0]


def init_summary(module) -> str:
    """``ResNet.init_weights(): 161 parameter tensors (25,557,032 values): 53 KaimingInit, ...``."""
    infos = getattr(module, '_params_init_info', {})
    counts = Counter()
    total = tensors = 0
    for param in module.parameters():
        tensors += 1
        total += param.numel()
        counts[_label(infos[param]['init_info']) if param in infos else 'not tracked'] += 1
    parts = ', '.join(f'{n} {label}' for label, n in counts.most_common())
    return (f'{type(module).__name__}.init_weights(): {tensors} parameter tensors ({total:,} '
            f'values): {parts} (per-parameter detail at DEBUG level)')


class InitReportMixin:
    """Put before ``BaseModule`` in the bases of a module that may be initialised top-level."""

    def _dump_init_info(self):
        logger = MMLogger.get_current_instance()
        if any(isinstance(h, FileHandler) for h in logger.handlers):
            super()._dump_init_info()  # the log file gets every parameter, the console nothing
        elif logger.isEnabledFor(logging.DEBUG):
            for name, param in self.named_parameters():
                info = self._params_init_info[param]['init_info']
                logger.debug(f'{name} - {tuple(param.shape)}: {" ".join(str(info).split())}')
        print_log(init_summary(self), logger='current', level=logging.INFO)
