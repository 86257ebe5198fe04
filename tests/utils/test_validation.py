import pytest

from mmbackbones.utils import (check_choice, check_frozen_stages, check_positive_int,
                               normalize_out_indices, to_plain)


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


# ----- config containers: omegaconf, range, numpy (detectron2's instantiate passes ListConfig) ---
def test_to_plain_converts_config_containers_recursively():
    import numpy as np
    omegaconf = pytest.importorskip('omegaconf', reason='omegaconf not installed')
    cfg = omegaconf.OmegaConf.create({'a': [1, 2, {'b': (3, 4)}], 'c': {'d': 'x'}})
    plain = to_plain(cfg)
    assert type(plain) is dict and type(plain['a']) is list and type(plain['a'][2]) is dict
    assert plain == {'a': [1, 2, {'b': [3, 4]}], 'c': {'d': 'x'}}
    assert to_plain(range(3)) == [0, 1, 2]
    converted = to_plain((np.int64(2), np.arange(2)))
    assert converted == (2, [0, 1]) and type(converted[0]) is int
    same = {'k': [1, 2]}
    assert to_plain(same) is same  # nothing to convert: the object is kept


@pytest.mark.parametrize('value', [range(4), (0, 1, 2, 3), [0, 1, 2, 3]])
def test_out_indices_accepts_any_sequence(value):
    assert normalize_out_indices(value, 4) == (0, 1, 2, 3)


def test_out_indices_and_frozen_stages_accept_numpy():
    import numpy as np
    assert normalize_out_indices(np.array([1, 3]), 4) == (1, 3)
    assert normalize_out_indices(np.int64(-1), 4) == (3,)
    assert check_frozen_stages(np.int32(2), 4) == 2
    assert type(check_frozen_stages(np.int32(2), 4)) is int
    with pytest.raises(TypeError, match='frozen_stages'):
        check_frozen_stages(np.float32(1.0), 4)


def test_backbone_constructor_takes_omegaconf_containers():
    omegaconf = pytest.importorskip('omegaconf', reason='omegaconf not installed')
    from mmbackbones import build_backbone
    from mmbackbones.models.backbones.resnet import ResNet
    out_indices = omegaconf.OmegaConf.create([1, 3])
    model = ResNet(depth=18, out_indices=out_indices,
                   norm_cfg=omegaconf.OmegaConf.create({'type': 'BN', 'requires_grad': True}))
    assert model.out_indices == (1, 3) and model.out_channels == (128, 512)
    built = build_backbone(omegaconf.OmegaConf.create({'type': 'ResNet', 'depth': 18,
                                                       'out_indices': [0, 2]}))
    assert built.out_channels == (64, 256)
