"""MixVisionTransformer (SegFormer's MiT): mmseg's key layout, metadata, out_indices, freezing,
checkpointing, input checks, layer depths, the official/HF converters, configs.

Parity with mmseg's own class is in tests/downstream/test_mit_parity.py (mmseg lives there)."""
import glob
import os

import pytest
import torch
from torch import nn

from mmbackbones import build_backbone, build_backbone_from_config
from mmbackbones.checkpoint.converters import convert_state_dict
from mmbackbones.checkpoint.converters.segformer_mit import (convert_segformer_mit,
                                                            is_segformer_mit)
from mmbackbones.models.backbones.mit import ARCH_SETTINGS, MixVisionTransformer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
TINY = dict(embed_dims=8, num_layers=[1, 1, 1, 1], num_heads=[1, 2, 2, 4])


def _tiny(**kwargs) -> MixVisionTransformer:
    torch.manual_seed(0)
    model = MixVisionTransformer(**{**TINY, **kwargs})
    model.init_weights()
    return model


def _perturb(model: nn.Module, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in model.state_dict().values():
            value.add_(torch.randn(value.shape, generator=gen) * 0.02)


# ----- keys and metadata -------------------------------------------------------------------------
def test_mmseg_key_layout():
    """mmseg 1.2.2's names (nn.MultiheadAttention's inside attn.attn), one block spelled out."""
    keys = list(_tiny().state_dict())
    block = [k[len('layers.0.1.0.'):] for k in keys if k.startswith('layers.0.1.0.')]
    assert block == [
        'norm1.weight', 'norm1.bias', 'attn.attn.in_proj_weight', 'attn.attn.in_proj_bias',
        'attn.attn.out_proj.weight', 'attn.attn.out_proj.bias', 'attn.sr.weight', 'attn.sr.bias',
        'attn.norm.weight', 'attn.norm.bias', 'norm2.weight', 'norm2.bias',
        'ffn.layers.0.weight', 'ffn.layers.0.bias', 'ffn.layers.1.weight', 'ffn.layers.1.bias',
        'ffn.layers.4.weight', 'ffn.layers.4.bias']
    assert keys[:4] == ['layers.0.0.projection.weight', 'layers.0.0.projection.bias',
                        'layers.0.0.norm.weight', 'layers.0.0.norm.bias']
    assert 'layers.3.2.weight' in keys
    # last stage: sr_ratio 1, no reduction conv
    assert not any(k.startswith('layers.3.1.0.attn.sr') for k in keys)


def test_qkv_bias_false_drops_both_projection_biases():
    keys = set(_tiny(qkv_bias=False).state_dict())
    assert 'layers.0.1.0.attn.attn.in_proj_weight' in keys
    assert not any('in_proj_bias' in k or 'out_proj.bias' in k for k in keys)


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_every_arch_metadata(arch):
    embed, layers, heads = ARCH_SETTINGS[arch]
    with torch.device('meta'):
        model = MixVisionTransformer(arch=arch)
    assert model.out_channels == tuple(embed * h for h in heads)
    assert model.out_strides == (4, 8, 16, 32)
    assert model.out_names == ('stage1', 'stage2', 'stage3', 'stage4')
    assert [len(stage[1]) for stage in model.layers] == list(layers)


def test_b0_parameter_count():
    """MiT-B0's encoder has 3,319,392 parameters (mmseg's MixVisionTransformer with b0's
    config, counted in the downstream tier too)."""
    with torch.device('meta'):
        model = MixVisionTransformer(arch='b0')
    assert sum(p.numel() for p in model.parameters()) == 3_319_392


def test_default_is_mmseg_default():
    with torch.device('meta'):
        model = MixVisionTransformer()
    assert model.out_channels == (64, 128, 256, 512)  # heads [1, 2, 4, 8]
    assert model.num_layers == (3, 4, 6, 3)
    assert isinstance(model.layers[0][2], nn.LayerNorm) and model.layers[0][2].eps == 1e-6


def test_forward_shapes_any_size_and_empty_batch():
    model = _tiny().eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 37, 50))
        empty = model(torch.zeros(0, 3, 37, 50))
    assert [tuple(o.shape) for o in outs] == [(2, 8, 10, 13), (2, 16, 5, 7), (2, 16, 3, 4),
                                              (2, 32, 2, 2)]
    assert [tuple(o.shape) for o in empty] == [(0,) + tuple(o.shape[1:]) for o in outs]


# ----- out_indices ------------------------------------------------------------------------------
def test_out_indices_order_subset_and_unbuilt_stages():
    full = _tiny().eval()
    part = MixVisionTransformer(**TINY, out_indices=(2, 0)).eval()
    assert len(part.layers) == 3  # stage 4 not built
    part.load_state_dict({k: v for k, v in full.state_dict().items()
                          if not k.startswith('layers.3.')})
    assert part.out_channels == (16, 8) and part.out_strides == (16, 4)
    assert part.out_names == ('stage3', 'stage1')
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = full(x), part(x)
    assert torch.equal(b[0], a[2]) and torch.equal(b[1], a[0])
    assert MixVisionTransformer(**TINY, out_indices=-1).out_names == ('stage4',)


@pytest.mark.parametrize('kwargs,error,words', [
    (dict(out_indices=(4,)), ValueError, 'out_indices'),
    (dict(out_indices=(0, 0)), ValueError, 'out_indices'),
    (dict(out_indices='all'), TypeError, 'out_indices'),
    (dict(num_layers=[1, 1, 1]), ValueError, 'num_layers'),
    (dict(num_heads=[1, 2, 0, 4]), ValueError, 'num_heads'),
    (dict(sr_ratios=(8, 4, 2)), ValueError, 'sr_ratios'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(drop_path_rate=1.5), ValueError, 'drop_path_rate'),
    (dict(qkv_bias='yes'), TypeError, 'qkv_bias'),
    (dict(norm_eval=1), TypeError, 'norm_eval'),
    (dict(norm_cfg=dict(type='Nope')), KeyError, 'norm_cfg'),
    (dict(act_cfg='GELU'), TypeError, 'act_cfg'),
    (dict(act_cfg=dict(type='Nope')), KeyError, 'act_cfg'),
    (dict(norm_cfg=dict(type='BN')), ValueError, 'LayerNorm-like'),
    (dict(norm_cfg=dict(type='GN', num_groups=2)), ValueError, 'LayerNorm-like'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(arch='b9'), ValueError, 'arch'),
    (dict(arch='b0'), ValueError, 'embed_dims'),  # TINY's embed_dims=8 contradicts b0's 32
    (dict(pretrained=3), TypeError, 'pretrained'),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words):
        MixVisionTransformer(**{**TINY, **kwargs})


@pytest.mark.parametrize('kwargs,name', [
    (dict(num_layers=[1, 10**9, 1, 1]), 'each of num_layers'),
    (dict(embed_dims=10**9), 'embed_dims'),
    (dict(embed_dims=20000), 'embed_dims * num_heads[3]'),
    (dict(embed_dims=4096, mlp_ratio=32), 'mlp_ratio * embed_dims * num_heads[0]'),
    (dict(sr_ratios=[10**6, 4, 2, 1]), 'each of sr_ratios'),
])
def test_absurd_sizes_are_refused_before_allocating(kwargs, name):
    with pytest.raises(ValueError) as info:
        MixVisionTransformer(**{**TINY, **kwargs})
    assert str(info.value).startswith(name) and '<=' in str(info.value), str(info.value)


def test_dtypes_autocast_and_empty_batch_in_training():
    model = _tiny().eval()
    with pytest.raises(TypeError, match='dtype torch.float32 .* got torch.float16'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float16))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        assert len(model(torch.rand(1, 3, 32, 32, dtype=torch.bfloat16))) == 4
    model.to(torch.float64)
    with torch.no_grad():
        assert all(o.dtype == torch.float64 for o in model(torch.rand(1, 3, 32, 32,
                                                                       dtype=torch.float64)))
    model.to(torch.float32).train()
    empty = model(torch.rand(0, 3, 32, 40))
    assert [tuple(e.shape) for e in empty] == [(0, 8, 8, 10), (0, 16, 4, 5), (0, 16, 2, 3),
                                               (0, 32, 1, 2)]


def test_arch_with_matching_values_or_mmseg_defaults():
    with torch.device('meta'):
        a = MixVisionTransformer(arch='b1', embed_dims=64, num_heads=[1, 2, 5, 8])
        b = MixVisionTransformer(arch='b1')
    assert a.out_channels == b.out_channels == (64, 128, 320, 512)
    with pytest.raises(ValueError, match='num_layers'):
        MixVisionTransformer(arch='b1', num_layers=[3, 4, 18, 3])


def test_input_checks():
    model = _tiny()
    with pytest.raises(ValueError, match='4-D'):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.randn(1, 4, 32, 32))
    with pytest.raises(TypeError, match='floating-point'):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


# ----- freezing, checkpointing, drop path -------------------------------------------------------
def test_frozen_stages():
    model = _tiny(frozen_stages=2)
    model.train()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(('layers.0.', 'layers.1.')) for n in frozen)
    assert all(not p.requires_grad for n, p in model.named_parameters()
               if n.startswith(('layers.0.', 'layers.1.')))
    assert not model.layers[1][1][0].training and model.layers[2][1][0].training
    stem_only = _tiny(frozen_stages=0)
    assert [n for n, p in stem_only.named_parameters() if not p.requires_grad] == [
        'layers.0.0.projection.weight', 'layers.0.0.projection.bias', 'layers.0.0.norm.weight',
        'layers.0.0.norm.bias']
    _tiny(frozen_stages=4, out_indices=(0,))  # stages that are not built: nothing to freeze


def test_with_cp_same_outputs_and_grads():
    plain, ckpt = _tiny(), _tiny(with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for model in (plain, ckpt):
        model.train()
        loss = sum(o.square().mean() for o in model(x))
        loss.backward()
        grads.append(model.layers[1][1][0].attn.attn.in_proj_weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_drop_path_is_stochastic_in_training_only():
    model = _tiny(drop_path_rate=0.5)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[3], model(x)[3])
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        a = model(x)[3]
        b = model(x)[3]
    assert not torch.equal(a, b)


def test_get_layer_depth():
    model = MixVisionTransformer(**{**TINY, 'num_layers': [2, 1, 3, 1]})
    depth = model.get_layer_depth
    n = 2 + 1 + 3 + 1 + 2
    assert depth('backbone.layers.0.0.projection.weight', 'backbone.') == (0, n)
    assert depth('backbone.layers.0.1.1.norm1.weight', 'backbone.') == (2, n)
    assert depth('backbone.layers.0.2.weight', 'backbone.') == (2, n)
    assert depth('backbone.layers.1.0.norm.weight', 'backbone.') == (3, n)
    assert depth('backbone.layers.2.1.2.ffn.layers.0.weight', 'backbone.') == (6, n)
    assert depth('backbone.layers.3.2.bias', 'backbone.') == (7, n)
    assert depth('decode_head.conv_seg.weight', 'backbone.') == (n - 1, n)
    depths = {depth(k)[0] for k, _ in model.named_parameters()}
    assert depths == set(range(0, n - 1))


def test_default_init_is_mmsegs():
    model = _tiny()
    conv = model.layers[0][0].projection
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
    assert torch.equal(model.layers[0][2].weight, torch.ones(8))
    out_proj = model.layers[0][1][0].attn.attn.out_proj
    # trunc-normal std 0.02 (torch's own Linear init has std ~0.2 at width 8)
    assert out_proj.weight.std() < 0.05 and torch.equal(out_proj.bias, torch.zeros(8))


# ----- official / HF checkpoints ----------------------------------------------------------------
def _official_layout(state: dict) -> dict:
    """Ours -> NVlabs' mix_transformer names (the inverse of the converter, written out here),
    with a classifier head, as the official ImageNet files are."""
    out = {}
    for key, value in state.items():
        parts = key.split('.')
        stage, part = int(parts[1]), parts[2]
        if part == '0':
            name = 'proj' if parts[3] == 'projection' else 'norm'
            out[f'patch_embed{stage + 1}.{name}.{parts[4]}'] = value
        elif part == '2':
            out[f'norm{stage + 1}.{parts[3]}'] = value
        else:
            head, rest = f'block{stage + 1}.{parts[3]}.', '.'.join(parts[4:])
            if rest == 'attn.attn.in_proj_weight':
                out[head + 'attn.q.weight'], out[head + 'attn.kv.weight'] = value.split(
                    [value.shape[1], 2 * value.shape[1]])
            elif rest == 'attn.attn.in_proj_bias':
                third = value.shape[0] // 3
                out[head + 'attn.q.bias'], out[head + 'attn.kv.bias'] = value.split(
                    [third, 2 * third])
            else:
                for ours, theirs in (('attn.attn.out_proj', 'attn.proj'),
                                     ('ffn.layers.0', 'mlp.fc1'),
                                     ('ffn.layers.1', 'mlp.dwconv.dwconv'),
                                     ('ffn.layers.4', 'mlp.fc2')):
                    if rest.startswith(ours + '.'):
                        rest = theirs + rest[len(ours):]
                if rest.startswith(('mlp.fc1.weight', 'mlp.fc2.weight')):
                    value = value.flatten(1)
                out[head + rest] = value
    out['head.weight'], out['head.bias'] = torch.randn(10, 32), torch.randn(10)
    return out


def _hf_layout(state: dict) -> dict:
    """Ours -> transformers' SegformerForSemanticSegmentation names (``segformer.`` prefix, a
    decode head)."""
    out = {}
    names = {'norm1': 'layer_norm_1', 'norm2': 'layer_norm_2',
             'attn.attn.out_proj': 'attention.output.dense', 'attn.sr': 'attention.self.sr',
             'attn.norm': 'attention.self.layer_norm', 'ffn.layers.0': 'mlp.dense1',
             'ffn.layers.1': 'mlp.dwconv.dwconv', 'ffn.layers.4': 'mlp.dense2'}
    for key, value in state.items():
        parts = key.split('.')
        stage, part = parts[1], parts[2]
        if part == '0':
            name = 'proj' if parts[3] == 'projection' else 'layer_norm'
            out[f'segformer.encoder.patch_embeddings.{stage}.{name}.{parts[4]}'] = value
        elif part == '2':
            out[f'segformer.encoder.layer_norm.{stage}.{parts[3]}'] = value
        else:
            head = f'segformer.encoder.block.{stage}.{parts[3]}.'
            rest = '.'.join(parts[4:])
            if rest.startswith('attn.attn.in_proj_'):
                kind = 'weight' if rest.endswith('weight') else 'bias'
                for name, chunk in zip(('query', 'key', 'value'), value.chunk(3)):
                    out[f'{head}attention.self.{name}.{kind}'] = chunk
                continue
            for ours, theirs in names.items():
                if rest.startswith(ours + '.'):
                    rest = theirs + rest[len(ours):]
            if rest in ('mlp.dense1.weight', 'mlp.dense2.weight'):
                value = value.flatten(1)
            out[head + rest] = value
    out['decode_head.classifier.weight'] = torch.randn(5, 16, 1, 1)
    return out


@pytest.mark.parametrize('layout', [_official_layout, _hf_layout])
def test_official_and_hf_checkpoints_load_through_init_cfg(layout, tmp_path):
    """A random MiT written in the official (NVlabs) or HF layout, loaded with auto
    conversion: every tensor comes back, outputs equal the source model's."""
    from safetensors.torch import save_file
    source = _tiny(embed_dims=16, num_heads=[1, 2, 5, 8])  # b0's heads, narrow
    _perturb(source)
    foreign = layout(source.state_dict())
    assert is_segformer_mit(foreign)
    path = str(tmp_path / 'mit.safetensors')
    save_file({k: v.contiguous() for k, v in foreign.items()}, path)
    ours = MixVisionTransformer(**{**TINY, 'embed_dims': 16, 'num_heads': [1, 2, 5, 8]},
                                init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    x = torch.randn(1, 3, 40, 40)
    source.eval()
    ours.eval()
    with torch.no_grad():
        for a, b in zip(source(x), ours(x)):
            assert torch.equal(a, b)


def test_converter_is_picked_by_auto_mode_and_refuses_strangers():
    source = _tiny()
    target = {k: tuple(v.shape) for k, v in source.state_dict().items()}
    converted, name = convert_state_dict(_official_layout(source.state_dict()), 'auto', target)
    assert name == 'segformer_mit' and set(converted) == set(target)
    # our own (= mmseg's) layout is left alone
    native, name = convert_state_dict(source.state_dict(), 'auto', target)
    assert name is None and set(native) == set(target)
    bad = _official_layout(source.state_dict())
    bad['block1.0.attn.mystery.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='mystery'):
        convert_segformer_mit(bad)
    half = _official_layout(source.state_dict())
    del half['block1.0.attn.kv.weight']
    with pytest.raises(KeyError, match='query/key/value'):
        convert_segformer_mit(half)


# ----- registry and configs ---------------------------------------------------------------------
def test_registered_and_built_by_name():
    model = build_backbone(dict(type='MixVisionTransformer', **TINY, out_indices=(3,)))
    assert isinstance(model, MixVisionTransformer) and model.out_channels == (32,)


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(REPO, 'configs', 'mit', '*.py'))))
def test_shipped_configs_build(path):
    arch = os.path.basename(path)[len('mit-'):-len('.py')]
    with torch.device('meta'):
        model = build_backbone_from_config(path)
    assert model.arch == arch
    embed, layers, heads = ARCH_SETTINGS[arch]
    assert model.out_channels == tuple(embed * h for h in heads)
    assert model.drop_path_rate == 0.1  # as mmseg's SegFormer configs
    assert len(glob.glob(os.path.join(REPO, 'configs', 'mit', '*.py'))) == 6


def test_onnx_export_with_dynamic_sides(tmp_path):
    """``mmbackbones export mit-b0 --dynamic``: the CLI's onnxruntime check compares with PyTorch
    at the traced 64 px and at an odd size (2x3x99x85)."""
    pytest.importorskip('onnxruntime', reason='the round trip needs onnxruntime')
    from tests.cli_helpers import run_cli
    out = str(tmp_path / 'mit.onnx')
    result = run_cli('export', 'mit-b0', '-o', out, '--input-size', '64', '64', '--dynamic')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'onnxruntime check ok' in result.stdout and 'stage4' in result.stdout
    assert os.path.getsize(out) > 1_000_000  # MiT-B0's 3.3 M float32 weights are inside


def test_norm_eval_changes_nothing_without_batchnorms():
    model = _tiny(norm_eval=True).train()
    assert model.norm_eval is True and all(m.training for m in model.modules())
