from .mmcv_check import check_mmcv_version
from .validation import (check_bool, check_choice, check_frozen_stages, check_non_negative_int,
                         check_positive_int, check_rate, normalize_out_indices, to_plain)

__all__ = ['check_mmcv_version', 'normalize_out_indices', 'check_frozen_stages',
           'check_choice', 'check_positive_int', 'check_non_negative_int', 'check_bool',
           'check_rate', 'to_plain']
