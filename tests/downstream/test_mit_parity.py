"""MixVisionTransformer against mmseg 1.2.2's own class: identical keys for MiT-B0..B5, equal
outputs (eval and train mode, 64 px and an odd size) and gradients on the same weights,
mmseg's checkpoints through ``pretrained=``/``init_cfg``, and a SegFormer training step in
mmseg's ``EncoderDecoder`` with our backbone.

mmseg's MiT has no ``frozen_stages``/``norm_eval``: ours default to -1/False, which is mmseg's
behaviour (every parameter trainable, every module following ``train()``)."""
import copy
import inspect
import warnings

import pytest
import torch
from torch import nn

from ._common import require

require('mmseg')

from mmbackbones.models.backbones.mit import ARCH_SETTINGS, MixVisionTransformer  # noqa: E402
from tests.parity import assert_outputs_close  # noqa: E402

NARROW = dict(embed_dims=16, num_layers=[1, 2, 1, 1], num_heads=[1, 2, 5, 8])


def _native(**kwargs):
    import mmseg.models  # noqa: F401 - registers
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type='MixVisionTransformer', _scope_='mmseg', **kwargs))


def _perturb(module: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in module.state_dict().values():
            value.add_(torch.randn(value.shape, generator=gen) * 0.02)


def _meta_native(monkeypatch, **kwargs):
    """mmseg's MiT on the meta device (its drop-path schedule calls ``.item()``: computed on
    the CPU)."""
    linspace = torch.linspace
    monkeypatch.setattr(torch, 'linspace', lambda *a, **k: linspace(*a, **{**k, 'device': 'cpu'}))
    with torch.device('meta'):
        return _native(**kwargs)


def _pair(**kwargs):
    torch.manual_seed(0)
    native = _native(**kwargs)
    native.init_weights()
    _perturb(native)
    ours = MixVisionTransformer(**kwargs)
    assert list(ours.state_dict()) == [k for k in native.state_dict()
                                       if int(k.split('.')[1]) < len(ours.layers)]
    ours.load_state_dict({k: v for k, v in native.state_dict().items()
                          if int(k.split('.')[1]) < len(ours.layers)}, strict=True)
    return native, ours


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_keys_and_shapes_identical_per_arch(arch, monkeypatch):
    embed, layers, heads = ARCH_SETTINGS[arch]
    native = _meta_native(monkeypatch, embed_dims=embed, num_layers=list(layers),
                          num_heads=list(heads))
    with torch.device('meta'):
        ours = MixVisionTransformer(arch=arch)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
        [(k, v.shape) for k, v in native.state_dict().items()]


def test_signature_and_defaults_are_mmsegs(monkeypatch):
    from mmseg.models.backbones.mit import MixVisionTransformer as Native
    theirs = inspect.signature(Native.__init__).parameters
    ours = inspect.signature(MixVisionTransformer.__init__).parameters
    assert list(ours)[:len(theirs)] == list(theirs)
    for name, param in theirs.items():
        assert ours[name].default == param.default, name
    assert set(ours) - set(theirs) == {'frozen_stages', 'norm_eval', 'arch'}
    native = _meta_native(monkeypatch)  # the defaults build the same network
    with torch.device('meta'):
        assert [(k, v.shape) for k, v in MixVisionTransformer().state_dict().items()] == \
            [(k, v.shape) for k, v in native.state_dict().items()]


@pytest.mark.parametrize('size', [(64, 64), (45, 61)])
@pytest.mark.parametrize('kwargs', [
    dict(NARROW),
    dict(NARROW, qkv_bias=False),
    dict(NARROW, out_indices=(0, 2)),
    dict(NARROW, sr_ratios=[4, 2, 2, 1], mlp_ratio=2, in_channels=1),
], ids=['narrow-b0', 'no-qkv-bias', 'out-0-2', 'sr-mlp-gray'])
def test_outputs_equal_in_eval(kwargs, size):
    native, ours = _pair(**kwargs)
    native.eval()
    ours.eval()
    x = torch.randn(2, kwargs.get('in_channels', 3), *size,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))


def test_b0_outputs_equal_in_eval():
    native, ours = _pair(**{k: list(v) if isinstance(v, tuple) else v for k, v in zip(
        ('embed_dims', 'num_layers', 'num_heads'), ARCH_SETTINGS['b0'])})
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in native.parameters()) == 3_319_392
    native.eval()
    ours.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_outputs_close(native(x), ours(x))


def test_training_mode_outputs_and_gradients_equal():
    """No dropout configured: train mode is deterministic; every parameter trainable in both
    (mmseg's MiT freezes nothing; our frozen_stages=-1, norm_eval=False)."""
    native, ours = _pair(**NARROW)
    native.train()
    ours.train()
    x = torch.randn(2, 3, 45, 61, generator=torch.Generator().manual_seed(3))
    out_n, out_o = native(x), ours(x)
    assert_outputs_close([o.detach() for o in out_n], [o.detach() for o in out_o])
    sum(o.square().mean() for o in out_n).backward()
    sum(o.square().mean() for o in out_o).backward()
    grads_n = dict(native.named_parameters())
    for name, param in ours.named_parameters():
        assert param.requires_grad and grads_n[name].requires_grad
        torch.testing.assert_close(param.grad, grads_n[name].grad, rtol=1e-4,
                                   atol=1e-5 * grads_n[name].grad.abs().max().item() + 1e-9,
                                   msg=name)
    assert all(m.training for m in ours.modules())


def test_frozen_stages_and_norm_eval_are_ours_only():
    from mmseg.models.backbones.mit import MixVisionTransformer as Native
    theirs = inspect.signature(Native.__init__).parameters
    assert 'frozen_stages' not in theirs and 'norm_eval' not in theirs
    native, ours = _pair(**NARROW)
    frozen = MixVisionTransformer(**NARROW, frozen_stages=1)
    frozen.load_state_dict(ours.state_dict())
    frozen.train()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    native.eval()
    with torch.no_grad():  # freezing changes what trains, not what is computed
        assert_outputs_close(native(x), frozen(x))
    assert not any(p.requires_grad for p in frozen.layers[0].parameters())
    assert all(p.requires_grad for p in frozen.layers[1].parameters())


@pytest.mark.parametrize('route', ['pretrained', 'init_cfg'])
def test_mmseg_checkpoint_loads(route, tmp_path):
    """An mmseg SegFormer checkpoint (``state_dict`` with ``backbone.`` keys, a decode head)."""
    native, _ = _pair(**NARROW)
    path = str(tmp_path / 'segformer.pth')
    weights = {f'backbone.{k}': v for k, v in native.state_dict().items()}
    weights['decode_head.conv_seg.weight'] = torch.zeros(3, 16, 1, 1)
    torch.save({'meta': {}, 'state_dict': weights}, path)
    if route == 'pretrained':  # mmseg's model-level pretrained= pushed into the backbone
        with pytest.warns(UserWarning, match='deprecated'):
            ours = MixVisionTransformer(**NARROW, pretrained=path)
        # mmseg's own spelling of the same thing
        assert ours.init_cfg == _native(**NARROW, pretrained=path).init_cfg
        ours.init_cfg['prefix'] = 'backbone.'
    else:
        ours = MixVisionTransformer(**NARROW, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                            prefix='backbone.'))
    ours.init_weights()
    for key, value in native.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_segformer_training_step_with_our_backbone():
    """mmseg's SegFormer (EncoderDecoder + SegformerHead) with ``mmbackbones.MixVisionTransformer``
    as the backbone type, MiT-B0: one loss + backward, every backbone parameter gets a grad."""
    import mmseg.models  # noqa: F401
    from mmengine.config import Config
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    import mmseg
    import os
    root = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs')
    cfg = Config.fromfile(os.path.join(root, '_base_', 'models', 'segformer_mit-b0.py'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.type = 'mmbackbones.MixVisionTransformer'
    model_cfg.decode_head.norm_cfg = dict(type='BN', requires_grad=True)  # no SyncBN on CPU
    model_cfg.data_preprocessor = None
    model = MODELS.build(dict(model_cfg, _scope_='mmseg'))  # whatever scope an earlier test left
    assert type(model.backbone) is MixVisionTransformer
    model.train()
    x = torch.randn(2, 3, 64, 64)
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, 64, 64)))
        sample.set_metainfo(dict(img_shape=(64, 64), pad_shape=(64, 64), ori_shape=(64, 64)))
        samples.append(sample)
    losses = model.loss(x, samples)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_mmpretrain_layer_decay_constructor_uses_our_depths():
    """mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` on our MiT: one lr per depth,
    the first patch embedding lowest, the last stage norm highest."""
    pytest.importorskip('mmpretrain', reason='mmpretrain provides the layer-decay constructor')
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    model = MixVisionTransformer(**NARROW)  # 5 blocks: depths 0..5, 7 in all
    constructor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    groups = constructor(model).optimizer.param_groups
    lrs = {g['param_name']: g['lr'] for g in groups}
    assert lrs['layers.0.0.projection.weight'] == 0.5 ** 6
    assert lrs['layers.0.1.0.attn.attn.in_proj_weight'] == 0.5 ** 5
    assert lrs['layers.1.0.projection.weight'] == lrs['layers.1.1.0.norm1.weight'] == 0.5 ** 4
    assert lrs['layers.3.2.weight'] == 0.5 ** 1
    assert len({g['layer_id'] for g in groups}) == 6
