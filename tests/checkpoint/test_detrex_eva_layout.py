"""detrex's EVA ViTDet layouts (``EVAViT``: EVA-01, ``EVA02_ViT``: EVA-02; also EVA-02's
released weights, bare) into the core ViT by every route, without detectron2: the layouts are
written by the converter's ``revert`` (the detectron2 tier checks them against detrex's classes
in tests/detectron2/test_detrex_eva.py)."""
import pytest
import torch

from mmbackbones.checkpoint.converters import convert_state_dict, detect_format
from mmbackbones.checkpoint.converters.detrex_eva import (convert_detrex_eva, is_detrex_eva,
                                                          revert_detrex_eva)
from mmbackbones.checkpoint.state import CheckpointMismatchError
from mmbackbones.models.backbones.vit import VisionTransformer

ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
COMMON = dict(arch=ARCH, img_size=32, patch_size=16, with_cls_token=False, final_norm=False,
              out_type='featmap', qkv_bias='qv', window_size=2, window_block_indexes=[0, 2])
EVA01 = dict(COMMON, use_rel_pos=True, rel_pos_zero_init=False, rel_pos_size=4,
             layer_scale_init_value=1.0, residual_block_indexes=[1])
EVA02 = dict(COMMON, layer_cfgs=dict(ffn_type='swiglu', sub_ln=True), rope=dict(ref_grid=(16, 16)))


def _model(kwargs, seed=0, **extra):
    torch.manual_seed(seed)
    model = VisionTransformer(**kwargs, **extra).eval()
    gen = torch.Generator().manual_seed(seed)
    model.load_state_dict({k: v + 0.05 * torch.randn(v.shape, generator=gen)
                           for k, v in model.state_dict().items()})
    return model


@pytest.mark.parametrize('kwargs,marks', [
    (EVA01, ('blocks.0.attn.qkv.weight', 'blocks.0.gamma_1', 'blocks.1.residual.conv1.weight',
             'blocks.0.mlp.fc1.weight')),
    (EVA02, ('blocks.0.attn.q_proj.weight', 'blocks.0.attn.k_proj.weight', 'blocks.0.mlp.w1.bias',
             'blocks.0.mlp.w2.weight', 'blocks.0.mlp.ffn_ln.weight', 'blocks.0.mlp.w3.weight')),
])
def test_detrex_eva_layout_round_trip_and_every_route(kwargs, marks, tmp_path):
    model = _model(kwargs)
    state = model.state_dict()
    detrex = revert_detrex_eva(state)  # a detrex model's layout: backbone.net.*
    assert all('backbone.net.' + m in detrex for m in marks)
    assert detrex['backbone.net.pos_embed'].shape == (1, 5, 32)  # a zero class entry
    assert is_detrex_eva(detrex) and detect_format(detrex)[0].name == 'detrex_eva'
    bare = revert_detrex_eva(state, prefix='', cls_entry=False)
    assert is_detrex_eva(bare) and detect_format(bare)[0].name == 'detrex_eva'
    back = convert_detrex_eva({**bare, 'rope_glb.freqs_cos': torch.zeros(1),
                               'blocks.0.attn.rope.freqs_sin': torch.zeros(1)})
    assert set(back) == set(state) and all(torch.equal(back[k], v) for k, v in state.items())
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        expected = model(x)[0]
    # load_state_dict of a whole detector (the convert hook), init_cfg, convert auto
    detector = torch.nn.Module()
    detector.backbone = torch.nn.Module()
    detector.backbone.net = VisionTransformer(**kwargs).eval()
    detector.load_state_dict({**detrex, 'backbone.simfp_2.0.weight': torch.zeros(1)},
                             strict=False)
    path = tmp_path / 'detrex_eva.pth'
    torch.save({'model': detrex}, path)
    pretrained = VisionTransformer(**kwargs, init_cfg=dict(type='Pretrained',
                                                           checkpoint=str(path))).eval()
    pretrained.init_weights()
    converted, used = convert_state_dict(detrex, 'auto', {k: v.shape for k, v in state.items()})
    assert used == 'detrex_eva'
    with torch.no_grad():
        for loaded in (detector.backbone.net, pretrained):
            torch.testing.assert_close(loaded(x)[0], expected)
    # the other EVA's layout does not fit: refused, nothing loaded
    other = EVA02 if kwargs is EVA01 else EVA01
    target = VisionTransformer(**other).eval()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointMismatchError):
        target.load_state_dict(revert_detrex_eva(state, prefix=''))
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_detection_leaves_other_vit_layouts_alone():
    plain = VisionTransformer(arch=ARCH, img_size=32, patch_size=16, with_cls_token=False,
                              out_type='featmap', use_rel_pos=True, rel_pos_size=2,
                              final_norm=False)
    from mmbackbones.checkpoint.converters.detectron2_vit import revert_detectron2_vit
    assert not is_detrex_eva(revert_detectron2_vit(plain.state_dict()))  # plain ViTDet
    beit_like = {'patch_embed.proj.weight': torch.zeros(1), 'blocks.0.attn.q_bias': torch.zeros(1),
                 'blocks.0.attn.qkv.weight': torch.zeros(1),
                 'blocks.0.attn.relative_position_bias_table': torch.zeros(1)}
    assert not is_detrex_eva(beit_like)  # BEiT's relative position bias tables
