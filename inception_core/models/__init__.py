"""The Inception networks, with the module names and state_dict keys of the implementations users
already hold weights for. ``create_model(name, **kwargs)``, ``list_models()``; each builder is also
available by name (``inception_core.models.inception_v3(...)``), as in torchvision."""

from inception_core.models._registry import create_model, list_models, register_model
from inception_core.models.bn_inception import BNInception, bn_inception
from inception_core.models.fid_inception_v3 import FIDInception3, fid_inception_v3
from inception_core.models.googlenet import GoogLeNet, googlenet
from inception_core.models.inception_resnet_v1 import (
    InceptionResnetV1,
    inception_resnet_v1,
    inception_resnet_v1_imagenet,
)
from inception_core.models.inception_resnet_v2 import (
    InceptionResnetV2,
    inception_resnet_v2,
    remap_cadene_inception_resnet_v2,
)
from inception_core.models.inception_v3 import Inception3, inception_v3
from inception_core.models.inception_v4 import InceptionV4, inception_v4

__all__ = [
    "BNInception",
    "FIDInception3",
    "GoogLeNet",
    "Inception3",
    "InceptionResnetV1",
    "InceptionResnetV2",
    "InceptionV4",
    "bn_inception",
    "create_model",
    "fid_inception_v3",
    "googlenet",
    "inception_resnet_v1",
    "inception_resnet_v1_imagenet",
    "inception_resnet_v2",
    "inception_v3",
    "inception_v4",
    "list_models",
    "register_model",
    "remap_cadene_inception_resnet_v2",
]
