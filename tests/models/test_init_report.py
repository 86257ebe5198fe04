"""init_weights() prints one summary line, not mmengine's per-parameter dump."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger

from mmbackbones import build_backbone
from mmbackbones.models.necks import FPN


class Records(logging.Handler):

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def records(request):
    # A fresh logger becomes mmengine's current one: a Runner test earlier in the same worker
    # may have left a current logger with a file handler (which gets mmengine's full dump).
    logger = MMLogger.get_instance(f'init_report_{request.node.name}')
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    yield logger, handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_one_info_line(records):
    logger, seen = records
    logger.setLevel(logging.INFO)
    model = build_backbone(dict(type='ResNet', depth=18))
    model.init_weights()
    lines = [r.getMessage() for r in seen if r.levelno >= logging.INFO]
    assert len(lines) == 1, lines
    n = len(list(model.parameters()))
    assert lines[0].startswith(f'ResNet.init_weights(): {n} parameter tensors (11,176,512 '
                               f'values): ')
    assert 'KaimingInit' in lines[0]


def test_detail_at_debug_level(records):
    logger, seen = records
    logger.setLevel(logging.DEBUG)
    model = build_backbone(dict(type='ResNet', depth=18))
    model.init_weights()
    debug = [r.getMessage() for r in seen if r.levelno == logging.DEBUG]
    assert sum(m.startswith('conv1.weight - (64, 3, 7, 7): ') for m in debug) == 1
    assert len([m for m in debug if ' - (' in m]) == len(list(model.parameters()))


def test_pretrained_is_named_in_the_summary(records, tmp_path):
    logger, seen = records
    logger.setLevel(logging.INFO)
    source = build_backbone(dict(type='ResNet', depth=18))
    path = tmp_path / 'r18.pth'
    torch.save(source.state_dict(), path)
    model = build_backbone(dict(type='ResNet', depth=18,
                                init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    summary = [r.getMessage() for r in seen if 'init_weights()' in r.getMessage()]
    assert len(summary) == 1 and f'load from {path}' in summary[0]
    assert torch.equal(model.conv1.weight, source.conv1.weight)


def test_fpn_alone_reports_once(records):
    logger, seen = records
    logger.setLevel(logging.INFO)
    FPN([8, 16], 8, 2).init_weights()
    assert [r.getMessage() for r in seen if r.levelno >= logging.INFO][0].startswith(
        'FPN.init_weights(): ')
