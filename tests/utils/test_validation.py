import pytest

from mmbackbones.utils import (check_choice, check_frozen_stages, check_positive_int,
                               normalize_out_indices)


@pytest.mark.parametrize('value, expected', [
    (3, (3,)), (-1, (3,)), ([0, 2], (0, 2)), ((-1, 0), (3, 0)), ((0, 1, 2, 3), (0, 1, 2, 3)),
])
def test_out_indices_accepts_int_list_tuple_negative(value, expected):
    assert normalize_out_indices(value, 4) == expected


@pytest.mark.parametrize('value, match', [
    (4, r'out_indices contains 4, out of range: allowed indices are -4\.\.3'),
    (-5, r'out_indices contains -5'),
    ((), r'out_indices must not be empty'),
    ((1, -3), r'out_indices must not repeat a stage'),
])
def test_out_indices_value_errors(value, match):
    with pytest.raises(ValueError, match=match):
        normalize_out_indices(value, 4)


@pytest.mark.parametrize('value', ['0', 1.0, None, True, {0: 1}, (0, '1')])
def test_out_indices_type_errors(value):
    with pytest.raises(TypeError, match='out_indices'):
        normalize_out_indices(value, 4)


def test_frozen_stages_range():
    assert check_frozen_stages(-1, 4) == -1
    assert check_frozen_stages(4, 4) == 4
    with pytest.raises(ValueError, match=r'frozen_stages must be in -1\.\.4.*got 5'):
        check_frozen_stages(5, 4)
    with pytest.raises(ValueError, match='frozen_stages'):
        check_frozen_stages(-2, 4)
    with pytest.raises(TypeError, match='frozen_stages'):
        check_frozen_stages('1', 4)


def test_choice_and_positive_int_messages():
    with pytest.raises(ValueError, match=r"style must be one of 'pytorch', 'caffe'; got 'tf'"):
        check_choice('style', 'tf', ('pytorch', 'caffe'))
    with pytest.raises(ValueError, match='must be one of'):
        check_choice('style', ['unhashable'], ('pytorch',))
    with pytest.raises(ValueError, match='base_channels must be a positive int, got 0'):
        check_positive_int('base_channels', 0)
    with pytest.raises(TypeError, match='base_channels must be an int'):
        check_positive_int('base_channels', 2.5)
