"""``frozen_stages`` on the core classes means mmpretrain's: the parameters that still train
(and the modules left in training mode) equal those of mmpretrain's own class, built with the
same arguments and put in ``train()`` (where mmpretrain freezes), and so do the BatchNorms
left in training mode."""
import pytest
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.models.backbones.cspnet import CSPDarkNet, CSPResNet, CSPResNeXt
from mmbackbones.models.backbones.regnet import RegNet
from mmbackbones.models.backbones.resnet import ResNet
from mmbackbones.models.backbones.swin import SwinTransformer
from tests.parity import mmpretrain_backbone

SWIN = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])


def _state(model):
    """What trains, and which BatchNorms update their statistics (the other layers frozen
    here behave the same in train and eval mode)."""
    model.train()
    return ({n for n, p in model.named_parameters() if p.requires_grad},
            {n for n, m in model.named_modules() if isinstance(m, _BatchNorm) and m.training})


def _assert_same_freezing(ours, theirs):
    our_params, our_modules = _state(ours)
    their_params, their_modules = _state(theirs)
    assert our_params == their_params
    assert our_modules == their_modules


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3])
def test_swin(frozen_stages):
    kwargs = dict(arch=SWIN, img_size=32, out_indices=(0, 1, 2, 3), use_abs_pos_embed=True,
                  frozen_stages=frozen_stages)
    _assert_same_freezing(SwinTransformer(**kwargs),
                          mmpretrain_backbone('SwinTransformer')(**kwargs))


@pytest.mark.parametrize('cls,depth,frozen_stages', [
    (CSPDarkNet, 53, 0), (CSPDarkNet, 53, 4), (CSPResNet, 50, -1), (CSPResNet, 50, 1),
    (CSPResNeXt, 50, 2)])
def test_cspnet(cls, depth, frozen_stages):
    out_indices = (0, 1, 2, 3, 4) if cls is CSPDarkNet else (0, 1, 2, 3)
    kwargs = dict(depth=depth, out_indices=out_indices, frozen_stages=frozen_stages)
    _assert_same_freezing(cls(**kwargs), mmpretrain_backbone(cls.__name__)(**kwargs))


@pytest.mark.parametrize('frozen_stages', [0, 2, 4])
def test_resnet_and_regnet(frozen_stages):
    kwargs = dict(out_indices=(0, 1, 2, 3), frozen_stages=frozen_stages)
    _assert_same_freezing(ResNet(18, **kwargs), mmpretrain_backbone('ResNet')(18, **kwargs))
    _assert_same_freezing(RegNet('regnetx_400mf', **kwargs),
                          mmpretrain_backbone('RegNet')('regnetx_400mf', **kwargs))
