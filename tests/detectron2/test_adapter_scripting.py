"""TorchScript behind the adapter (issue 29 item 3): every registered native family (39), small, as
``Detectron2Backbone`` inside detectron2's FPN, is traced (``torch.jit.trace``) and, where its
network has a TorchScript forward, scripted (``torch.jit.script``); the compiled module computes
what the eager one does. The families whose network does not script are listed in
:data:`NOT_SCRIPTABLE` with TorchScript's own reason (the test fails when the reason changes or
the family starts to script: never a silent skip). One Mask R-CNN with the adapter as the
bottom-up of its FPN is scripted with detectron2's ``scripting_with_instances``.
"""
import math
import warnings

import pytest
import torch

pytest.importorskip('detectron2', reason='detectron2 is not installed (make test-detectron2 '
                    'installs it from ../shared/wheels)')

import detectron2.export.torchscript_patch  # noqa: E402,F401 (detectron2's FPN scripting)
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool  # noqa: E402

from mmbackbones import MODELS  # noqa: E402
from mmbackbones.integrations.detectron2 import Detectron2Backbone  # noqa: E402
from mmbackbones.models.base import BaseBackbone  # noqa: E402
from mmbackbones.models.wrapper import WrapperBackbone  # noqa: E402

_VIT = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
_TWINS = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
              patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2], mlp_ratios=[2, 2, 2, 2],
              sr_ratios=[8, 4, 2, 1])
_HR = {f'stage{i}': dict(num_modules=1, num_branches=i, block='BASIC', num_blocks=(1, ) * i,
                         num_channels=(8, 16, 32, 64)[:i]) for i in range(1, 5)}
_R = dict(base_channels=8, stem_channels=8)
_STDC = dict(channels=(8, 16, 32, 32, 64))
# one small variant per registered native type, with feature-map outputs
FAMILIES = {
    'ResNet': dict(depth=18, **_R),
    'ResNetV1c': dict(depth=18, **_R),
    'ResNetV1d': dict(depth=50, **_R),
    'ResNeXt': dict(depth=50, base_channels=16, groups=4, width_per_group=2),
    'ResNeSt': dict(depth=14, base_channels=16, stem_channels=16),
    'Res2Net': dict(depth=50, base_channels=16, stem_channels=16, base_width=8),
    'RegNet': dict(arch='regnetx_400mf'),
    'HRNet': dict(extra=_HR),
    'CSPDarkNet': dict(depth=53, out_indices=(2, 3, 4)),
    'CSPResNet': dict(depth=50, out_indices=(1, 2, 3)),
    'CSPResNeXt': dict(depth=50, out_indices=(1, 2, 3)),
    'CSPNeXt': dict(deepen_factor=0.167, widen_factor=0.125, out_indices=(2, 3, 4)),
    'YOLOXCSPDarknet': dict(deepen_factor=0.33, widen_factor=0.125, out_indices=(2, 3, 4)),
    'Darknet': dict(out_indices=(3, 4, 5)),
    'MobileNetV2': dict(widen_factor=0.35, out_indices=(2, 4, 7)),
    'MobileNetV3': dict(arch='small_050', out_indices=(3, 8, 12)),
    'EfficientNet': dict(arch='b0', out_indices=(3, 4, 6)),
    'EfficientNetV2': dict(arch='b0', out_indices=(3, 5, 7)),
    'ConvNeXt': dict(arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                     out_indices=(0, 1, 2, 3), gap_before_final_norm=False),
    'SwinTransformer': dict(img_size=32, window_size=3, out_indices=(0, 1, 2, 3),
                            arch=dict(embed_dims=16, depths=[1, 1, 1, 1],
                                      num_heads=[1, 1, 2, 2])),
    'FocalNet': dict(arch=dict(embed_dims=8, depths=[1, 1, 1, 1], focal_levels=[2, 2, 2, 2],
                               focal_windows=[3, 3, 3, 3]), out_indices=(0, 1, 2, 3)),
    'PoolFormer': dict(arch=dict(layers=[1, 1, 1, 1], embed_dims=[8, 16, 24, 32],
                                 mlp_ratios=[4, 4, 4, 4], layer_scale_init_value=1e-5),
                       out_indices=(0, 2, 4, 6)),
    'MixVisionTransformer': dict(embed_dims=8, num_layers=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]),
    'PyramidVisionTransformer': dict(embed_dims=8, num_layers=[1, 1, 1, 1]),
    'PyramidVisionTransformerV2': dict(embed_dims=8, num_layers=[1, 1, 1, 1]),
    'PCPVT': dict(arch=_TWINS, out_indices=(0, 1, 2, 3)),
    'SVT': dict(arch=dict(_TWINS, window_sizes=[3, 3, 2, 2]), out_indices=(0, 1, 2, 3)),
    'MSCAN': dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], mlp_ratios=[4, 4, 4, 4],
                  norm_cfg=dict(type='BN')),
    'DetectoRS_ResNet': dict(depth=50, base_channels=8, stem_channels=8,
                             conv_cfg=dict(type='ConvAWS'), sac=dict(type='SAC'),
                             stage_with_sac=(False, True, True, False), out_indices=(0, 1, 2, 3)),
    'TridentResNet': dict(depth=50, base_channels=8, stem_channels=8, num_branch=3,
                          test_branch_idx=1, trident_dilations=(1, 2, 3), out_indices=(0, 1, 2)),
    'VGG': dict(depth=11, out_indices=(1, 2, 3, 4), norm_cfg=dict(type='BN')),
    'SSDVGG': dict(depth=16),
    'HourglassNet': dict(downsample_times=2, stage_channels=[8, 8, 16], stage_blocks=[1, 1, 1],
                         feat_channel=8),
    'STDCNet': dict(_STDC, out_indices=(2, 3, 4)),
    'STDCContextPathNet': dict(backbone_cfg=dict(type='STDCNet', **_STDC),
                               last_in_channels=(64, 32), out_channels=16,
                               ffm_cfg=dict(in_channels=48, out_channels=32)),
    'InternImage': dict(arch=dict(channels=8, depths=[1, 1, 1, 1], groups=[1, 2, 2, 4]),
                        out_indices=(0, 1, 2, 3)),
    'VisionTransformer': dict(arch=_VIT, img_size=32, patch_size=8, out_type='featmap'),
    'ViTEVA02': dict(arch=_VIT, img_size=32, patch_size=8, out_type='featmap'),
    'BEiTViT': dict(arch=_VIT, img_size=32, patch_size=8, out_type='featmap'),
}
#: the types registered under another name, or not a network of their own
NOT_FAMILIES = {'ViT': 'alias of VisionTransformer', 'BackboneWithNeck': 'a backbone + neck '
                'container', 'Detectron2ResNet': 'scripted in tests/detectron2/test_scripting.py',
                'MAEViT': "MAE's pre-training encoder: forward(x) masks patches at random and "
                          "returns (tokens, mask, ids_restore), no feature maps (its "
                          "fine-tuning networks are VisionTransformer's and BEiTViT's)"}
SCRIPTS = {'ResNet', 'ResNetV1c', 'ResNetV1d', 'ResNeXt', 'RegNet', 'MobileNetV2', 'Darknet',
           'CSPDarkNet', 'CSPResNet', 'CSPResNeXt', 'ConvNeXt',
           'MSCAN', 'PCPVT', 'SVT', 'PyramidVisionTransformer',
           'PyramidVisionTransformerV2', 'MixVisionTransformer', 'YOLOXCSPDarknet', 'CSPNeXt',
           'FocalNet', 'MobileNetV3', 'EfficientNet', 'EfficientNetV2',
           'PoolFormer', 'HRNet', 'ResNeSt', 'Res2Net', 'VGG',
           'SSDVGG', 'HourglassNet', 'STDCNet',
           'STDCContextPathNet'}
_PROPERTY = 'Expected a single top-level function'  # TorchScript compiles the module's properties
#: family -> TorchScript's reason (the first error torch.jit.script raises for its network)
NOT_SCRIPTABLE = {
    'SwinTransformer': 'is currently not supported in Torchscript',
    'DetectoRS_ResNet': 'cannot statically infer the expected size of a list',
    'TridentResNet': 'TridentBottleneck cannot be scripted (torch.jit.script): its own residual '
                     'forward',
    'InternImage': "Expected a value of type 'Optional[Device]' for argument 'device'",
    'VisionTransformer': _PROPERTY, 'BEiTViT': _PROPERTY,
    # the rope's per-grid cache (filled by the eager and traced runs before): a dict keyed by
    # tuples, which TorchScript cannot type
    'ViTEVA02': 'Error inferring type for _cache',
}


def _native_types():
    import mmbackbones.models.backbones  # noqa: F401 (registers every family)
    return sorted(k for k, v in MODELS.module_dict.items()
                  if isinstance(v, type) and issubclass(v, BaseBackbone)
                  and not issubclass(v, WrapperBackbone))


def test_every_registered_family_is_swept():
    types = set(_native_types())
    assert types - set(NOT_FAMILIES) == set(FAMILIES), types ^ set(FAMILIES)
    assert SCRIPTS.isdisjoint(NOT_SCRIPTABLE) and SCRIPTS | set(NOT_SCRIPTABLE) == set(FAMILIES)


def _fpn(family):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bottom_up = Detectron2Backbone(dict(type=family, **FAMILIES[family]))
    strides = {}
    for name, shape in bottom_up.output_shape().items():
        strides.setdefault(shape.stride, name)
    stride, features = max(strides), []
    while stride in strides:  # detectron2's FPN takes log2-contiguous strides
        features.insert(0, strides[stride])
        stride //= 2
    top = LastLevelMaxPool()
    top.in_feature = f'p{int(math.log2(max(strides)))}'
    fpn = FPN(bottom_up=bottom_up, in_features=features, out_channels=8, top_block=top)
    return fpn.eval()


def _fresh_jit_state():
    """Forget the classes a failed compile left behind (they change the next error)."""
    torch._C._jit_clear_class_registry()
    torch.jit._recursive.concrete_type_store = torch.jit._recursive.ConcreteTypeStore()
    torch.jit._state._clear_class_state()


def _assert_same(got, eager, what):
    assert list(got) == list(eager), what
    for name in eager:
        torch.testing.assert_close(got[name], eager[name], rtol=1e-4, atol=1e-4,
                                   msg=f'{what}: {name}')


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_adapter_in_fpn_traces_and_scripts(family):
    fpn = _fpn(family)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(fpn, x, strict=False, check_trace=False)
        _assert_same(traced(x), fpn(x), f'{family} traced')
        x2 = torch.randn(2, 3, 64, 64)
        _assert_same(traced(x2), fpn(x2), f'{family} traced, batch 2')
    if family in NOT_SCRIPTABLE:
        _fresh_jit_state()  # TorchScript's first error, whatever compiled before in this process
        with pytest.raises(Exception) as info:
            torch.jit.script(fpn)
        assert NOT_SCRIPTABLE[family] in str(info.value), (family, str(info.value)[:400])
        return
    # eager first: torch.jit.script puts the prepared modules into the parents' children
    inputs = (x, torch.randn(2, 3, 96, 64))  # another size: nothing baked in
    with torch.no_grad():
        eager = [fpn(inp) for inp in inputs]
    scripted = torch.jit.script(fpn)
    with torch.no_grad():
        for inp, expected in zip(inputs, eager):
            _assert_same(scripted(inp), expected, f'{family} scripted')


def _calibrate_norms_(model, image):
    """Every BatchNorm gets the statistics of its input on ``image`` (in forward order): with
    unit statistics a random network's scores saturate to exact ties, which have no order."""
    from torch.nn.modules.batchnorm import _BatchNorm

    def set_stats(module, args):
        x = args[0]
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)) + module.eps)

    handles = [m.register_forward_pre_hook(set_stats) for m in model.modules()
               if isinstance(m, _BatchNorm)]
    with torch.no_grad():
        model([{'image': image}])
    for handle in handles:
        handle.remove()
    return model


def test_mask_rcnn_with_the_adapter_scripts():
    """detectron2's Mask R-CNN FPN (its model-zoo config) built with
    ``build_mmbackbones_fpn_backbone`` (a native ResNet-18 behind ``Detectron2Backbone``),
    scripted with detectron2's ``scripting_with_instances`` as its own export test does: the
    scripted model's detections are the eager model's."""
    from detectron2 import model_zoo
    from detectron2.export import scripting_with_instances
    from detectron2.modeling import build_model
    from detectron2.structures import Boxes
    from detectron2.utils.testing import assert_instances_allclose, reload_script_model
    from torch import Tensor

    from mmbackbones.integrations.detectron2 import add_mmbackbones_config, register_all
    register_all(timm_models=None)
    cfg = model_zoo.get_config('COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml',
                               trained=False)
    add_mmbackbones_config(cfg)
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS = 'cpu', ''
    cfg.MODEL.BACKBONE.NAME = 'build_mmbackbones_fpn_backbone'
    cfg.MODEL.MMBACKBONES.TYPE = 'ResNet'
    cfg.MODEL.MMBACKBONES.ARGS.depth = 18
    cfg.MODEL.MMBACKBONES.ARGS.base_channels = 16
    cfg.MODEL.MMBACKBONES.ARGS.stem_channels = 16
    cfg.MODEL.MMBACKBONES.ARGS.out_indices = [0, 1, 2, 3]
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.TEST.DETECTIONS_PER_IMAGE = 10
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(3, 96, 128, generator=gen) * 255
    model = _calibrate_norms_(build_model(cfg).eval(), image)
    assert isinstance(model.backbone.bottom_up, Detectron2Backbone)
    fields = {'proposal_boxes': Boxes, 'objectness_logits': Tensor, 'pred_boxes': Boxes,
              'scores': Tensor, 'pred_classes': Tensor, 'pred_masks': Tensor}
    inputs = [{'image': image},
              {'image': torch.nn.functional.interpolate(image[None], scale_factor=0.5)[0]}]
    with torch.no_grad():  # eager first: scripting puts prepared modules into the model
        eager = model.inference(inputs, do_postprocess=False)
    scripted = reload_script_model(scripting_with_instances(model, fields))
    with torch.no_grad():
        got = scripted.inference(inputs, do_postprocess=False)
    for g, e in zip(got, eager):
        assert len(g) == len(e) > 0
        assert_instances_allclose(g, e, rtol=1e-3, msg='scripted vs eager')
