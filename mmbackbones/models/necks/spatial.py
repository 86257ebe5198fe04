"""One check for every neck entry point: a neck needs feature maps, not pooled vectors.

A backbone declares a pooled ``(N, C)`` (or token ``(N, L, C)``) output with stride ``None``
(ConvNeXt's default ``gap_before_final_norm=True``, ViT's default ``out_type='cls_token'``).
Fed to a neck such an output fails deep inside ``conv2d``; :func:`check_spatial_outputs` fails
first, naming the backbone argument that gives maps. It is called by ``BackboneWithNeck``
(``build_backbone(cfg, neck=...)``), ``neck_in_channels`` (``mmbackbones info --neck``),
``fill_auto_in_channels`` and our ``FPN``'s forward.
"""
from typing import Optional, Sequence

# Per backbone type: the argument (and value) that makes its outputs feature maps.
SPATIAL_FIX = {
    'ConvNeXt': 'gap_before_final_norm=False',
    'VisionTransformer': "out_type='featmap'",
    'TIMMBackbone': 'features_only=True',
    'TorchvisionBackbone': 'return_nodes naming layers that return (N, C, H, W) maps',
}


def spatial_fix(backbone_type: Optional[str]) -> str:
    """What to change in a ``backbone_type`` config so that every output is a feature map."""
    name = str(backbone_type or '').split('.')[-1]
    if name in SPATIAL_FIX:
        return f'build it with {SPATIAL_FIX[name]}'
    return 'build it with outputs that are feature maps'


def pooled_output_message(backbone_type: Optional[str], names: Sequence[str],
                          where: str = 'a neck') -> str:
    outputs = ', '.join(repr(n) for n in names)
    which = f'output {outputs} is' if len(names) == 1 else f'outputs {outputs} are'
    return (f'{where} needs feature maps (N, C, H, W), but {backbone_type or "the backbone"} '
            f'{which} pooled (stride None); {spatial_fix(backbone_type)}')


def check_spatial_outputs(backbone, where: str = 'a neck') -> None:
    """Raise ``ValueError`` if any output of a built ``backbone`` has stride ``None``.

    ``backbone`` is an mmbackbones backbone (``out_strides``, ``out_names``); modules that do not
    report strides are let through (there is nothing to check).
    """
    strides = tuple(getattr(backbone, 'out_strides', ()) or ())
    names = tuple(getattr(backbone, 'out_names', ()) or ()) or tuple(map(str, range(len(strides))))
    pooled = [n for n, s in zip(names, strides) if s is None]
    if pooled:
        raise ValueError(pooled_output_message(type(backbone).__name__, pooled, where))
