"""Bridges to downstream toolboxes: mmdet/mmseg channel helpers and the detectron2 adapter.

Nothing here imports mmdet, mmseg or detectron2 at import time.
"""
from .downstream import backbone_out_channels, fill_auto_in_channels, neck_in_channels

__all__ = ['neck_in_channels', 'fill_auto_in_channels', 'backbone_out_channels']
