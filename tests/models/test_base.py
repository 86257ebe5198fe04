"""The backbone contract, exercised through a tiny test backbone."""
import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.models.base import ShapeSpec
from tests.toy_backbone import ToyBackbone

pytestmark = pytest.mark.usefixtures('toy_registered')  # ToyBackbone by type name


def test_outputs_follow_out_indices_order_and_metadata():
    model = build_backbone(dict(type='ToyBackbone', out_indices=(2, 0)))
    assert isinstance(model, ToyBackbone)
    outs = model(torch.randn(2, 3, 64, 48))
    assert isinstance(outs, tuple) and len(outs) == 2
    assert model.out_channels == (32, 8)
    assert model.out_strides == (16, 4)
    assert model.out_names == ('stage3', 'stage1')
    for out, ch, stride in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, ch, 64 // stride, 48 // stride)
    assert model.output_shape() == {'stage3': ShapeSpec(channels=32, stride=16),
                                    'stage1': ShapeSpec(channels=8, stride=4)}
    assert list(model.forward_dict(torch.randn(1, 3, 32, 32))) == ['stage3', 'stage1']


def test_metadata_is_read_only():
    model = ToyBackbone()
    with pytest.raises(AttributeError):
        model.out_channels = (1,)


def test_stages_after_last_output_are_not_built():
    assert len(ToyBackbone(out_indices=(0,)).stages) == 1
    assert len(ToyBackbone(out_indices=-1).stages) == 3


@pytest.mark.parametrize('frozen_stages', [0, 1, 2])
def test_frozen_stages_survive_train(frozen_stages):
    model = ToyBackbone(frozen_stages=frozen_stages)
    model.train()
    frozen = [model.stem, *model.stages][:frozen_stages + 1]
    trainable = [model.stem, *model.stages][frozen_stages + 1:]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    for module in trainable:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    assert model.train() is model


def test_norm_eval_keeps_every_bn_in_eval_mode():
    model = ToyBackbone(norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    assert all(p.requires_grad for p in model.parameters())
    running_mean = model.stages[0][1].running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    assert torch.equal(running_mean, model.stages[0][1].running_mean)


def test_wrong_channel_count_names_in_channels():
    model = ToyBackbone()
    with pytest.raises(ValueError, match=r'in_channels=3 but the input has 1 channels'):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.randn(3, 32, 32))


def test_metadata_is_neutral():
    """detectron2's padding contract lives in integrations/detectron2/contract.py only."""
    model = ToyBackbone()
    assert model.size_divisibility == 0
    assert not hasattr(model, 'padding_constraints')


# ----- "does init_cfg load a checkpoint?" (one helper for every family) ---------------------------
@pytest.mark.parametrize('init_cfg,loads,only', [
    (None, False, False),
    (dict(type='Pretrained', checkpoint='x.pth'), True, True),
    ([dict(type='Pretrained', checkpoint='x.pth')], True, True),
    ((dict(type='Kaiming', layer='Conv2d'), dict(type='Pretrained', checkpoint='x.pth')),
     True, False),
    ([dict(type='Kaiming', layer='Conv2d')], False, False),
    (dict(type='Normal', std=0.01), False, False),
])
def test_is_pretrained_init_handles_dicts_and_lists(init_cfg, loads, only):
    from mmengine.config import ConfigDict
    from mmbackbones.models.base import is_pretrained_init
    assert is_pretrained_init(init_cfg) is loads
    assert is_pretrained_init(init_cfg, only=True) is only
    if isinstance(init_cfg, dict):
        assert is_pretrained_init(ConfigDict(init_cfg)) is loads


def test_pretrained_init_given_as_class_counts():
    from mmengine.model.weight_init import PretrainedInit
    from mmbackbones.models.base import is_pretrained_init
    assert is_pretrained_init([dict(type=PretrainedInit, checkpoint='x.pth')], only=True)


@pytest.mark.parametrize('cfg', [
    dict(type='ResNet', depth=18, out_indices=(0, 1)),
    dict(type='RegNet', arch='regnetx_400mf', out_indices=(0, 1)),
])
@pytest.mark.parametrize('as_list', [False, True])
def test_zero_init_residual_keeps_a_pretrained_checkpoint(cfg, as_list, tmp_path):
    """A Pretrained load, given as a dict or as a list, must not be followed by zeroing the last
    norm of every block (it used to happen for the list form)."""
    source = build_backbone(dict(cfg, zero_init_residual=False))
    for name, buf in source.named_parameters():
        if name.endswith('weight') and buf.dim() == 1:  # norm weights: clearly non-zero
            buf.data.uniform_(0.5, 1.5)
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': source.state_dict()}, path)
    pretrained = dict(type='Pretrained', checkpoint=str(path))
    model = build_backbone(dict(cfg, zero_init_residual=True,
                                init_cfg=[pretrained] if as_list else pretrained))
    assert model.loads_pretrained()
    model.init_weights()
    for name, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    scratch = build_backbone(dict(cfg, zero_init_residual=True))
    assert not scratch.loads_pretrained()
    scratch.init_weights()
    assert any(float(m.last_norm.weight.detach().abs().sum()) == 0 for m in scratch.modules()
               if hasattr(m, 'last_norm'))

# ----- mmdet/mmseg pretrained= -------------------------------------------------------------------
def test_pretrained_string_means_a_pretrained_init_cfg_and_warns():
    from mmbackbones.models.base import BaseBackbone
    with pytest.warns(UserWarning, match='deprecated'):
        cfg = BaseBackbone._pretrained_to_init_cfg('open-mmlab://resnet50_v1c', None)
    assert cfg == dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')
    same = dict(type='Pretrained', checkpoint='a.pth')
    with pytest.warns(UserWarning):
        assert BaseBackbone._pretrained_to_init_cfg('a.pth', same) == same
    kaiming = [dict(type='Kaiming')]
    assert BaseBackbone._pretrained_to_init_cfg(None, kaiming) is kaiming


@pytest.mark.parametrize('pretrained, init_cfg, error, match', [
    ('a.pth', dict(type='Kaiming', layer='Conv2d'), ValueError, 'contradict'),
    ('a.pth', dict(type='Pretrained', checkpoint='b.pth'), ValueError, 'contradict'),
    (True, None, TypeError, 'pretrained must be'),
    ('', None, ValueError, 'non-empty'),
])
def test_pretrained_bad_combinations_are_refused(pretrained, init_cfg, error, match):
    from mmbackbones.models.base import BaseBackbone
    with pytest.raises(error, match=match):
        BaseBackbone._pretrained_to_init_cfg(pretrained, init_cfg)
