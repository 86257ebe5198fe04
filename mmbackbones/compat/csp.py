"""mmdet 3.3's YOLO-lineage backbones: ``mmbackbones.mmdet.CSPDarknet`` (YOLOX),
``mmbackbones.mmdet.CSPNeXt`` (RTMDet), ``mmbackbones.mmdet.Darknet`` (YOLOv3).

Each takes mmdet's exact signature and defaults and builds the core module
(:class:`~..models.backbones.yolox_cspdarknet.YOLOXCSPDarknet`,
:class:`~..models.backbones.cspnext.CSPNeXt`, :class:`~..models.backbones.darknet.Darknet`).
Translations: the outputs come in stage order whatever order ``out_indices`` lists them in, as
mmdet returns them; Darknet's ``frozen_stages=k`` freezes ``conv1`` and ``conv_res_block1..k-1``
in mmdet (the contract's ``k - 1``; mmdet's 0 freezes nothing, as -1).
"""
from ..models.backbones.cspnext import CSPNeXt
from ..models.backbones.darknet import Darknet
from ..models.backbones.yolox_cspdarknet import YOLOXCSPDarknet
from ..models.layers.csp_layer import YOLO_BN, YOLO_INIT_CFG
from ..registry import HOST_TWINS
from .signatures import host_init

MMDET = HOST_TWINS['mmdet']

MMDET_CSPDARKNET = dict(
    arch='P5', deepen_factor=1.0, widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1,
    use_depthwise=False, arch_ovewrite=None, spp_kernal_sizes=(5, 9, 13), conv_cfg=None,
    norm_cfg=YOLO_BN, act_cfg=dict(type='Swish'), norm_eval=False, init_cfg=YOLO_INIT_CFG)
MMDET_CSPNEXT = dict(
    arch='P5', deepen_factor=1.0, widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1,
    use_depthwise=False, expand_ratio=0.5, arch_ovewrite=None, spp_kernel_sizes=(5, 9, 13),
    channel_attention=True, conv_cfg=None, norm_cfg=YOLO_BN, act_cfg=dict(type='SiLU'),
    norm_eval=False, init_cfg=YOLO_INIT_CFG)
MMDET_DARKNET = dict(
    depth=53, out_indices=(3, 4, 5), frozen_stages=-1, conv_cfg=None,
    norm_cfg=dict(type='BN', requires_grad=True),
    act_cfg=dict(type='LeakyReLU', negative_slope=0.1), norm_eval=True, pretrained=None,
    init_cfg=None)


def stage_order(out_indices):
    """mmdet's output order: the stages in ``out_indices``, in stage order, once each
    (anything else goes to the core, which names the problem)."""
    if isinstance(out_indices, (list, tuple)) and all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in out_indices):
        return tuple(sorted(set(out_indices)))
    return out_indices


def _csp_translate(core):
    def translate(self, out_indices, **arguments):
        """mmdet's arguments; the outputs in stage order (mmdet's)."""
        core.__init__(self, out_indices=stage_order(out_indices), **arguments)
    return translate


class MMDetCSPDarknet(YOLOXCSPDarknet):
    """mmdet 3.3's ``CSPDarknet`` (YOLOX), on :class:`YOLOXCSPDarknet`."""
    host = 'mmdet'
    __init__ = host_init(MMDET_CSPDARKNET, _csp_translate(YOLOXCSPDarknet))


class MMDetCSPNeXt(CSPNeXt):
    """mmdet 3.3's ``CSPNeXt`` (RTMDet), on the core :class:`CSPNeXt`."""
    host = 'mmdet'
    __init__ = host_init(MMDET_CSPNEXT, _csp_translate(CSPNeXt))


def _darknet_translate(self, out_indices, frozen_stages, **arguments):
    """mmdet's arguments; ``frozen_stages`` in mmdet's count, outputs in stage order."""
    if isinstance(frozen_stages, int) and not isinstance(frozen_stages, bool) and \
            frozen_stages >= 0:
        frozen_stages = frozen_stages - 1 if frozen_stages > 0 else -1
    Darknet.__init__(self, out_indices=stage_order(out_indices), frozen_stages=frozen_stages,
                     **arguments)


class MMDetDarknet(Darknet):
    """mmdet 3.3's ``Darknet`` (YOLOv3), on the core :class:`Darknet`."""
    host = 'mmdet'
    __init__ = host_init(MMDET_DARKNET, _darknet_translate)

    @property
    def host_frozen_stages(self) -> int:
        """``frozen_stages`` in mmdet's count."""
        return self.frozen_stages + 1 if self.frozen_stages >= 0 else -1


MMDET.register_module('CSPDarknet', module=MMDetCSPDarknet)
MMDET.register_module('CSPNeXt', module=MMDetCSPNeXt)
MMDET.register_module('Darknet', module=MMDetDarknet)
