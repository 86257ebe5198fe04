"""``init_weights()`` reports in one line.

mmengine's ``BaseModule.init_weights()`` ends, on the top-level module, with one INFO record per
parameter (641 lines for a ResNet-50) unless the current logger has a file handler (the file then
gets them). :class:`InitReportMixin` leaves mmengine's method as it is and listens, through a
standard ``logging.Filter`` on the current logger while ``init_weights()`` runs: each
per-parameter record is turned into a DEBUG record (``MMLogger.get_current_instance().
setLevel('DEBUG')`` shows them) and counted, and one INFO line sums them up (how many tensors
were initialised how).
"""
import logging
import re
from collections import Counter
from typing import List, Tuple

from mmengine.logging import MMLogger, print_log

SAME = 'The value is the same before and after calling `init_weights`'
# mmengine's per-parameter record: '\n{name} - {param.shape}: \n{init_info} \n '
_RECORD = re.compile(r'^\n(?P<name>\S+) - torch\.Size\(\[(?P<shape>[^\]]*)\]\): \n'
                     r'(?P<info>.*?)\s*$', re.DOTALL)


def _label(info: str) -> str:
    info = ' '.join(str(info).split())
    if info.startswith(SAME):
        return 'kept their constructor values'
    if info.startswith('PretrainedInit') or 'load from' in info:
        return info.replace('PretrainedInit: ', '')
    return info.split(':')[0]


class _PerParameterRecords(logging.Filter):
    """Turns mmengine's per-parameter INFO records into DEBUG ones and keeps their labels."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger
        self.labels: List[Tuple[str, str]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        match = _RECORD.match(str(record.msg)) if record.levelno == logging.INFO else None
        if match is None:
            return True
        info = ' '.join(match['info'].split())
        self.labels.append((match['name'], _label(info)))
        shape = tuple(int(d) for d in match['shape'].split(',') if d.strip())
        record.msg, record.args = f'{match["name"]} - {shape}: {info}', ()
        record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
        return self.logger.isEnabledFor(logging.DEBUG)


def init_summary(module, labels) -> str:
    """``ResNet.init_weights(): 161 parameter tensors (25,557,032 values): 53 KaimingInit, ...``
    from ``labels``, the ``(parameter name, how)`` pairs mmengine reported."""
    how = dict(labels)
    counts = Counter()
    total = tensors = 0
    for name, param in module.named_parameters():
        tensors += 1
        total += param.numel()
        counts[how.get(name, 'initialised (detail in the log file)')] += 1
    parts = ', '.join(f'{n} {label}' for label, n in counts.most_common())
    return (f'{type(module).__name__}.init_weights(): {tensors} parameter tensors ({total:,} '
            f'values): {parts} (per-parameter detail at DEBUG level)')


class InitReportMixin:
    """Put before ``BaseModule`` in the bases of a module that may be initialised top-level."""

    _depth = 0  # InitReportMixin.init_weights() calls in progress (a module holding another)

    def init_weights(self):
        logger = MMLogger.get_current_instance()
        records = _PerParameterRecords(logger)
        logger.addFilter(records)
        InitReportMixin._depth += 1
        try:
            super().init_weights()
        finally:
            InitReportMixin._depth -= 1
            logger.removeFilter(records)
        to_file = any(isinstance(h, logging.FileHandler) for h in logger.handlers)
        if InitReportMixin._depth == 0 and (records.labels or to_file):  # the outermost, once
            print_log(init_summary(self, records.labels), logger='current', level=logging.INFO)
