"""One family per module; importing a module registers its classes."""
from . import convnext, swin  # noqa: F401
from . import cspnet  # noqa: F401
from . import hrnet  # noqa: F401
from . import mit  # noqa: F401
from . import poolformer  # noqa: F401
from . import regnet  # noqa: F401
from . import resnet  # noqa: F401
from . import vit  # noqa: F401
from . import timm_backbone, torchvision_backbone  # noqa: F401
from . import focalnet  # noqa: F401
