"""detectron2's/detrex's Swin and detrex's ConvNeXt layouts load into the core networks by every
route (``load_state_dict`` of the module or of a model holding it, ``init_cfg`` Pretrained,
``convert`` auto-detection), all or nothing; the ``mmbackbones.detrex`` twins save those layouts
(detectron2 itself is not needed: the layouts are written by the converters' ``revert``, and the
detectron2 tier checks them against detectron2's and detrex's own classes)."""
import copy
import io

import pytest
import torch
from torch import nn

from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.detectron2_swin import (is_detectron2_swin,
                                                               revert_detectron2_swin)
from mmbackbones.checkpoint.converters.detrex_convnext import (is_detrex_convnext,
                                                               revert_detrex_convnext)
from mmbackbones.checkpoint.converters.timm_swin import is_timm_swin
from mmbackbones.checkpoint.keys import own_state_dict
from mmbackbones.checkpoint.state import CheckpointMismatchError
from mmbackbones.models.backbones.convnext import ConvNeXt
from mmbackbones.models.backbones.swin import SwinTransformer

SWIN = dict(arch=dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4]),
            out_indices=(1, 2, 3), pad_small_map=True, use_abs_pos_embed=True, img_size=64)
CONVNEXT = dict(arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64]), out_indices=(1, 2, 3),
                gap_before_final_norm=False)


def _randomized(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _cases():
    return [
        ('swin', lambda **kw: SwinTransformer(**SWIN, **kw),
         lambda m: revert_detectron2_swin(m.state_dict(), m.patch_resolution),
         is_detectron2_swin, 'detectron2_swin'),
        ('convnext', lambda **kw: ConvNeXt(**CONVNEXT, **kw),
         lambda m: revert_detrex_convnext(m.state_dict()), is_detrex_convnext,
         'detrex_convnext'),
    ]


@pytest.mark.parametrize('name,build,native,detect,converter', _cases(),
                         ids=[c[0] for c in _cases()])
def test_native_layout_loads_by_every_route(tmp_path, name, build, native, detect, converter):
    source = _randomized(build())
    state = native(source)
    assert detect(state) and not any(k.startswith('stages.0.blocks.0.attn.w_msa') for k in state)
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        expected = source(x)

    def check(model):
        with torch.no_grad():
            for got, want in zip(model.eval()(x), expected):
                torch.testing.assert_close(got, want)

    direct = build()
    direct.load_state_dict(state)  # the load hooks convert
    check(direct)
    holder = nn.Module()
    holder.backbone = build()
    holder.load_state_dict({'backbone.' + k: v for k, v in state.items()})
    check(holder.backbone)
    path = tmp_path / f'{name}.pth'
    torch.save(state, path)
    pretrained = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    pretrained.init_weights()
    check(pretrained)
    converted, used = convert_state_dict(
        state, 'auto', {k: tuple(v.shape) for k, v in source.state_dict().items()})
    assert used == converter and set(converted) == set(source.state_dict())
    assert convert_state_dict(state, 'detectron2')[1] == converter
    # half a checkpoint is refused and nothing is loaded
    half = dict(state)
    half.pop(sorted(half)[len(half) // 2])
    fresh = build()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(CheckpointMismatchError):
        fresh.load_state_dict(half, strict=False)
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())


def test_detectron2_swin_is_not_mistaken_for_microsofts():
    state = revert_detectron2_swin(SwinTransformer(**SWIN).state_dict(), (16, 16))
    assert is_timm_swin(state) and is_detectron2_swin(state)
    microsoft = {k: v for k, v in state.items() if not k.startswith('norm')}
    microsoft.update({'norm.weight': torch.ones(128), 'norm.bias': torch.zeros(128),
                      'head.weight': torch.zeros(10, 128)})
    assert not is_detectron2_swin(microsoft)
    assert state['absolute_pos_embed'].shape == (1, 16, 16, 16)  # detectron2's (1, C, H, W)


@pytest.mark.parametrize('twin', ['SwinTransformer', 'ConvNeXt'])
def test_detrex_twins_save_detrex_layouts(twin):
    """Without detectron2 the twins are plain modules; their state dicts are detrex's layouts
    (picklable, copyable), their parameters and ``own_state_dict`` the core's names."""
    import mmbackbones.detrex as detrex
    if twin == 'SwinTransformer':
        model = detrex.SwinTransformer(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4],
                                       out_indices=(1, 2, 3))
        native_key, own_key = 'layers.0.blocks.0.mlp.fc1.weight', \
            'stages.0.blocks.0.ffn.layers.0.0.weight'
    else:
        model = detrex.ConvNeXt(depths=[1, 1, 2, 1], dims=[8, 16, 32, 64], out_indices=(1, 2, 3))
        native_key, own_key = 'stages.0.0.pwconv1.weight', 'stages.0.0.pointwise_conv1.weight'
    assert native_key in model.state_dict() and own_key not in model.state_dict()
    assert own_key in own_state_dict(model) and own_key in dict(model.named_parameters())
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for other in (copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        assert list(other.state_dict()) == list(model.state_dict())
    reloaded = copy.deepcopy(model)
    _randomized(model)
    reloaded.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for name, value in model.eval()(x).items():
            torch.testing.assert_close(reloaded.eval()(x)[name], value)


def test_convert_command_writes_a_detectron2_swin_in_our_names_and_back(tmp_path):
    from mmbackbones.cli import main as cli_main
    source = _randomized(SwinTransformer(**SWIN))
    native = revert_detectron2_swin(source.state_dict(), source.patch_resolution)
    torch.save({'model': {'backbone.' + k: v for k, v in native.items()}}, tmp_path / 'd2.pth')
    assert cli_main(['convert', str(tmp_path / 'd2.pth'), str(tmp_path / 'ours.pth'),
                     '--prefix', 'backbone']) == 0
    written = torch.load(tmp_path / 'ours.pth', weights_only=True)
    written = written.get('state_dict', written)
    assert set(written) == set(source.state_dict())
    SwinTransformer(**SWIN).load_state_dict(written, strict=True)
    assert cli_main(['convert', str(tmp_path / 'ours.pth'), str(tmp_path / 'back.pth'),
                     '--to', 'detectron2', '--model', 'SwinTransformer']) == 0
    back = torch.load(tmp_path / 'back.pth', weights_only=True)
    back = back.get('model', back)  # detectron2's checkpoint format
    assert set(back) == set(native)
