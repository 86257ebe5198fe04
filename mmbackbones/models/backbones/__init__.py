"""One family per module; importing a module registers its classes."""
from . import convnext, swin  # noqa: F401
from . import beit  # noqa: F401
from . import cspnet  # noqa: F401
from . import cspnext, darknet, yolox_cspdarknet  # noqa: F401
from . import hrnet  # noqa: F401
from . import mae  # noqa: F401
from . import mit  # noqa: F401
from . import mscan  # noqa: F401
from . import poolformer  # noqa: F401
from . import regnet  # noqa: F401
from . import resnet  # noqa: F401
from . import vit  # noqa: F401
from . import timm_backbone, torchvision_backbone  # noqa: F401
from . import resnest, res2net  # noqa: F401
from . import vit_eva02  # noqa: F401
from . import mobilenet_v2, mobilenet_v3  # noqa: F401
from . import efficientnet, efficientnet_v2  # noqa: F401
from . import pvt  # noqa: F401
from . import twins  # noqa: F401
from . import focalnet  # noqa: F401
from . import stdc  # noqa: F401
from . import detectors_resnet  # noqa: F401
from . import trident_resnet  # noqa: F401
from . import vgg  # noqa: F401
from . import hourglass  # noqa: F401
from . import internimage  # noqa: F401
