"""Our detectron2-style ResNet against detectron2's own ``build_resnet_backbone``: parameter
names, outputs, ``freeze_at``; and the checkpoints a detectron2/detrex user has (``.pth`` saved
by detectron2, ``.pkl`` as written by ``tools/convert-torchvision-to-d2.py``, MSRA caffe2
``.pkl`` with ``res2_0_branch2a_w`` names) through ``DetectionCheckpointer`` and our
``init_cfg``, into our detectron2-style ResNet and the OpenMMLab ``ResNet``."""
import pickle

import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling import build_resnet_backbone  # noqa: E402
from detectron2.layers import FrozenBatchNorm2d as D2Frozen  # noqa: E402

from mmbackbones.checkpoint.state import CheckpointMismatchError  # noqa: E402
from mmbackbones.detrex import BasicStem, ResNet  # noqa: E402
from mmbackbones.models.backbones.resnet import ResNet as MMResNet  # noqa: E402
from mmbackbones.models.layers import FrozenBatchNorm2d  # noqa: E402
from tests.detectron2._common import randomize_norms_  # noqa: E402

FEATURES = ['res2', 'res3', 'res4', 'res5']
X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def d2_reference(depth=50, norm='FrozenBN', freeze_at=0, stride_in_1x1=True):
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth < 50 else 256
    cfg.MODEL.RESNETS.OUT_FEATURES = FEATURES
    cfg.MODEL.RESNETS.NORM = norm
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = stride_in_1x1
    cfg.MODEL.BACKBONE.FREEZE_AT = freeze_at
    return build_resnet_backbone(cfg, ShapeSpec(channels=3))


def ours(depth=50, norm='FrozenBN', freeze_at=0, stride_in_1x1=True, init_cfg=None):
    extra = dict(stride_in_1x1=stride_in_1x1) if depth >= 50 else {}  # as detectron2's blocks
    return ResNet(stem=BasicStem(in_channels=3, out_channels=64, norm=norm),
                  stages=ResNet.make_default_stages(depth=depth, norm=norm, **extra),
                  out_features=FEATURES, freeze_at=freeze_at, init_cfg=init_cfg)


def outputs(model):
    model.eval()
    with torch.no_grad():
        out = model(X)
    return out if isinstance(out, dict) else dict(zip(FEATURES, out))


def assert_outputs_equal(got, expected):
    for f in FEATURES:
        torch.testing.assert_close(got[f], expected[f], rtol=1e-4,
                                   atol=1e-4 * float(expected[f].abs().max()))


@pytest.fixture(scope='module')
def reference():
    """detectron2's R50 (MSRA: stride in the 1x1) with random norms, and its outputs."""
    torch.manual_seed(0)
    ref = randomize_norms_(d2_reference())
    return ref, outputs(ref)


def _state(model, numpy=False):
    return {k: (v.numpy() if numpy else v) for k, v in model.state_dict().items()}


def _caffe2_name(key):
    """detectron2 key -> MSRA caffe2 blob name (written out here, independently of the code
    under test; detectron2's own heuristics read these files in the reference)."""
    parts = key.split('.')
    leaf = {'weight': 'w', 'bias': 'b'}
    if parts[0] == 'stem':
        return 'conv1_w' if parts[-2] == 'conv1' else 'res_conv1_bn_' + \
            {'weight': 's', 'bias': 'b'}[parts[-1]]
    stage, block, layer = parts[0], parts[1], parts[2]
    branch = {'conv1': 'branch2a', 'conv2': 'branch2b', 'conv3': 'branch2c',
              'shortcut': 'branch1'}[layer]
    base = f'{stage}_{block}_{branch}'
    if parts[3] == 'norm':
        return f'{base}_bn_' + {'weight': 's', 'bias': 'b'}[parts[-1]]
    return f'{base}_{leaf[parts[-1]]}'


@pytest.fixture(scope='module')
def checkpoint_files(tmp_path_factory, reference):
    ref, _ = reference
    folder = tmp_path_factory.mktemp('d2ckpt')
    DetectionCheckpointer(ref, save_dir=str(folder)).save('model_final')
    d2_pkl = folder / 'R-50-torchvision.pkl'  # what convert-torchvision-to-d2.py writes
    with open(d2_pkl, 'wb') as f:
        pickle.dump({'model': _state(ref, numpy=True), '__author__': 'torchvision',
                     'matching_heuristics': True}, f)
    # MSRA caffe2 files hold only the affine part of each norm (mean 0 / var 1)
    msra = randomize_norms_(d2_reference(), seed=3)
    with torch.no_grad():
        for m in msra.modules():
            if isinstance(m, D2Frozen):
                m.running_mean.zero_(), m.running_var.fill_(1)
    blobs = {_caffe2_name(k): v for k, v in _state(msra, numpy=True).items()
             if not k.endswith(('running_mean', 'running_var'))}
    blobs['res2_0_branch2a_w_momentum'] = blobs['res2_0_branch2a_w'] * 0
    blobs['fc1000_w'] = torch.zeros(10, 2048).numpy()
    c2_pkl = folder / 'R-50.pkl'
    with open(c2_pkl, 'wb') as f:
        pickle.dump({'blobs': blobs}, f)
    return dict(pth=str(folder / 'model_final.pth'), d2_pkl=str(d2_pkl), c2_pkl=str(c2_pkl),
                msra=msra)


def test_same_names_and_outputs_as_detectron2(reference):
    ref, expected = reference
    model = ours()
    assert set(model.state_dict()) == set(ref.state_dict())
    assert [tuple(v.shape) for v in model.state_dict().values()] == \
        [tuple(ref.state_dict()[k].shape) for k in model.state_dict()]
    model.load_state_dict(ref.state_dict(), strict=True)
    assert_outputs_equal(outputs(model), expected)
    assert model.output_shape() == ref.output_shape()


@pytest.mark.parametrize('freeze_at', range(6))
def test_freeze_at_equals_build_resnet_backbone(freeze_at):
    ref = d2_reference(depth=18, norm='BN', freeze_at=freeze_at)
    model = ours(depth=18, norm='BN', freeze_at=freeze_at)
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable == {k for k, p in ref.named_parameters() if p.requires_grad}
    frozen_norms = {n for n, m in model.named_modules() if isinstance(m, FrozenBatchNorm2d)}
    assert frozen_norms == {n for n, m in ref.named_modules() if isinstance(m, D2Frozen)}
    assert len(frozen_norms) == [0, 1, 5, 10, 15, 20][freeze_at]


@pytest.mark.parametrize('kind', ['pth', 'd2_pkl'])
def test_detection_checkpointer_loads_every_tensor(checkpoint_files, reference, kind):
    ref, expected = reference
    model = randomize_norms_(ours(), seed=7)
    DetectionCheckpointer(model).load(checkpoint_files[kind])
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert_outputs_equal(outputs(model), expected)


def test_caffe2_names_through_detection_checkpointer_and_init_cfg(checkpoint_files):
    expected = outputs(checkpoint_files['msra'])
    via_d2 = ours()
    DetectionCheckpointer(via_d2).load(checkpoint_files['c2_pkl'])  # detectron2's heuristics
    assert_outputs_equal(outputs(via_d2), expected)
    via_init = ours(init_cfg=dict(type='Pretrained', checkpoint=checkpoint_files['c2_pkl']))
    via_init.init_weights()
    assert_outputs_equal(outputs(via_init), expected)


@pytest.mark.parametrize('kind', ['pth', 'd2_pkl'])
def test_init_cfg_loads_every_tensor(checkpoint_files, reference, kind):
    ref, expected = reference
    model = ours(init_cfg=dict(type='Pretrained', checkpoint=checkpoint_files[kind]))
    model.init_weights()
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert_outputs_equal(outputs(model), expected)


@pytest.mark.parametrize('kind', ['pth', 'd2_pkl', 'c2_pkl'])
def test_openmmlab_resnet_loads_the_same_files(checkpoint_files, reference, kind):
    expected = reference[1] if kind != 'c2_pkl' else outputs(checkpoint_files['msra'])
    model = MMResNet(depth=50, style='caffe', norm_cfg=dict(type='FrozenBN'),
                     out_indices=(0, 1, 2, 3),
                     init_cfg=dict(type='Pretrained', checkpoint=checkpoint_files[kind]))
    model.init_weights()
    assert_outputs_equal(outputs(model), expected)


def test_half_matching_checkpoint_refused_by_both_loaders(tmp_path, reference):
    """Conv names that match but norms under other names (stem.bn1, res2.0.bn1: the layout of
    the old stand-in): refused instead of loading the convs and leaving every norm at init."""
    ref, _ = reference
    state = {k.replace('conv1.norm', 'bn1').replace('conv2.norm', 'bn2')
             .replace('conv3.norm', 'bn3'): v for k, v in ref.state_dict().items()}
    path = tmp_path / 'half.pth'
    torch.save({'model': state}, path)
    model = ours()
    before = model.stem.conv1.weight.clone()
    with pytest.raises(CheckpointMismatchError, match='not the norms'):
        DetectionCheckpointer(model).load(str(path))
    with pytest.raises(CheckpointMismatchError, match='not the norms'):
        ours(init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    assert torch.equal(model.stem.conv1.weight, before)
