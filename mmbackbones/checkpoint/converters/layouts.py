"""Naming the layout of a state dict that did not fit, for error messages.

``describe_layout`` says which library's layout the keys are in (and which converter of
:data:`~mmbackbones.checkpoint.converters.CONVERTERS` converts it, when one does);
``describe_features`` names the features behind unexpected tensors (layer scale, register
tokens, ...) that a model lacks. Nothing here converts anything: a layout listed with converter
``None`` is one we know but do not convert.
"""
import re
from typing import Iterable, Optional, Tuple

# (a regex one key must match, the layout in words, the converter module converting it or None);
# more specific layouts first
_LAYOUTS = (
    (r'^stages\.\d+\.(conv_exp|conv_transition(_b)?|conv_down)\.', "timm's cspnet layout",
     'timm_cspnet'),
    (r'^stages\.\d+\.blocks\.\d+\.(token_mixer\.|layer_scale1\.scale$|res_scale1\.)',
     "timm's metaformer (poolformer) layout", 'timm_poolformer'),
    (r'^network\.\d+\.\d+\.mlp\.fc1\.', "the official PoolFormer layout", None),
    (r'^stages\.\d+\.blocks\.\d+\.conv_dw\.', "timm's convnext layout", 'timm_convnext'),
    (r'^s\d+\.b\d+\.se\.', "timm's regnety layout (squeeze-excitation)", None),
    (r'^s\d+\.b\d+\.conv\d\.conv\.', "timm's regnet layout", 'timm_regnet'),
    (r'^layers\.\d+\.blocks\.\d+\.attn\.relative_position_bias_table$', "timm's swin layout",
     'timm_swin'),
    (r'^blocks\.\d+\.attn\.qkv\.', "timm's vit layout", 'timm_vit'),
    (r'^layer\d\.\d+\.se\.', "timm's resnet layout with squeeze-excitation", None),
    (r'^res\d\.\d+\.conv\d\.', "detectron2's resnet layout", 'detectron2_resnet'),
    (r'^layer\d\.\d+\.conv\d\.weight$', "torchvision's resnet layout", 'torchvision_resnet'),
)

# (a regex an unexpected key matches, the feature in words)
_FEATURES = (
    (r'(^|\.)(ls[12]\.gamma|gamma[12](\.weight)?)$',
     "layer scale (DINOv2, CaiT, DeiT III; a VisionTransformer has it with "
     "layer_scale_init_value > 0, as mmpretrain's dinov2 configs set 1e-5)"),
    (r'^reg_token$', 'register tokens'),
    (r'(^|\.)[qk]_norm\.', 'query/key norms'),
    (r'(^|\.)se\.', 'squeeze-excitation'),
    (r'(^|\.)attn_pool\.', 'attention pooling'),
)


def describe_layout(state_dict: Iterable) -> Tuple[Optional[str], Optional[str]]:
    """``(layout in words, converter name or None)`` of a state dict (or its keys), or
    ``(None, None)`` when unknown."""
    keys = list(state_dict)
    for pattern, layout, converter in _LAYOUTS:
        regex = re.compile(pattern)
        if any(regex.search(k) for k in keys):
            return layout, converter
    return None, None


def describe_features(keys: Iterable[str]) -> Optional[str]:
    """The known features among ``keys`` in words (``'layer scale (...) (24 tensors)'``)."""
    keys = list(keys)
    found = []
    for pattern, feature in _FEATURES:
        regex = re.compile(pattern)
        hits = [k for k in keys if regex.search(k)]
        if hits:
            found.append(f'{feature} ({len(hits)} tensor{"s" if len(hits) > 1 else ""}, '
                         f'e.g. {hits[0]})')
    return ', '.join(found) or None
