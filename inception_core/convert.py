"""``convert(model)``: an Inception network from torchvision, timm, pretrainedmodels (Cadene) or
facenet-pytorch -> the inception_core network with the same weights, device, dtype and train/eval state."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["convert", "convertible"]


def _classifier(model: nn.Module, name: str) -> nn.Linear:
    """The reference's final ``nn.Linear`` ``model.<name>``; TypeError when it was replaced (a
    Sequential head, an Identity): ours has the reference's layout and would not hold its weights."""
    layer = getattr(model, name, None)
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"model.{name}: expected the reference's nn.Linear classifier, got "
                        f"{type(layer).__name__}; convert() takes the network as its builder makes it: convert "
                        f"that, then replace the result's .{name} with your head (and copy its weights)")
    return layer


def _dropout_p(model: nn.Module, name: str, default: float) -> float:
    layer = getattr(model, name, None)
    return layer.p if isinstance(layer, nn.Dropout) else default


def _tv_googlenet(m):
    from inception_core.models.googlenet import googlenet

    return googlenet(num_classes=_classifier(m, "fc").out_features, aux_logits=m.aux_logits,
                     transform_input=m.transform_input, dropout=m.dropout.p,
                     dropout_aux=m.aux1.dropout.p if m.aux1 is not None else 0.7,
                     init_weights=False)


def _tv_inception3(m):
    from inception_core.models.inception_v3 import inception_v3

    return inception_v3(num_classes=_classifier(m, "fc").out_features, aux_logits=m.aux_logits,
                        transform_input=m.transform_input, dropout=m.dropout.p, init_weights=False)


def _timm_inception_v3(m):
    from inception_core.models.inception_v3 import inception_v3

    return inception_v3(num_classes=_classifier(m, "fc").out_features, aux_logits=m.aux_logits, transform_input=False,
                        dropout=_dropout_p(m, "head_drop", 0.0), init_weights=False)


def _timm_inception_v4(m):
    from inception_core.models.inception_v4 import inception_v4

    return inception_v4(num_classes=m.num_classes, in_chans=m.in_chans, drop_rate=_dropout_p(m, "head_drop", 0.0))


def _timm_inception_resnet_v2(m):
    from inception_core.models.inception_resnet_v2 import inception_resnet_v2

    return inception_resnet_v2(num_classes=m.num_classes, in_chans=m.in_chans,
                               drop_rate=_dropout_p(m, "head_drop", 0.0))


def _cadene_inception_resnet_v2(m):
    from inception_core.models.inception_resnet_v2 import inception_resnet_v2

    return inception_resnet_v2(num_classes=_classifier(m, "last_linear").out_features)


def _cadene_bninception(m):
    from inception_core.models.bn_inception import bn_inception

    return bn_inception(num_classes=_classifier(m, "last_linear").out_features)


def _pytorch_fid_inception_v3(m):
    from inception_core.fid.compat import from_pytorch_fid

    return from_pytorch_fid(m)


def _torch_fidelity_inception_v3(m):
    from inception_core.fid.compat import from_torch_fidelity

    return from_torch_fidelity(m)


def _facenet_inception_resnet_v1(m):
    from inception_core.models.inception_resnet_v1 import inception_resnet_v1

    # facenet's checkpoints carry `logits` whenever they have a classifier, even with num_classes=None
    logits = getattr(m, "logits", None)
    return inception_resnet_v1(num_classes=logits.out_features if logits is not None else None, classify=m.classify,
                               dropout_prob=m.dropout.p)


# (module of the class, class name) -> builder of the equivalent network
_CONVERTERS: dict[tuple[str, str], Callable[[nn.Module], nn.Module]] = {
    ("torchvision.models.googlenet", "GoogLeNet"): _tv_googlenet,
    ("torchvision.models.inception", "Inception3"): _tv_inception3,
    ("timm.models.inception_v3", "InceptionV3"): _timm_inception_v3,
    ("timm.models.inception_v4", "InceptionV4"): _timm_inception_v4,
    ("timm.models.inception_resnet_v2", "InceptionResnetV2"): _timm_inception_resnet_v2,
    ("pretrainedmodels.models.inceptionresnetv2", "InceptionResNetV2"): _cadene_inception_resnet_v2,
    ("pretrainedmodels.models.bninception", "BNInception"): _cadene_bninception,
    ("facenet_pytorch.models.inception_resnet_v1", "InceptionResnetV1"): _facenet_inception_resnet_v1,
    ("pytorch_fid.inception", "InceptionV3"): _pytorch_fid_inception_v3,
    ("torch_fidelity.feature_extractor_inceptionv3", "FeatureExtractorInceptionV3"): _torch_fidelity_inception_v3,
}


def _key(model: nn.Module) -> tuple[str, str]:
    return type(model).__module__, type(model).__name__


def convertible(model: nn.Module) -> bool:
    """Whether ``model`` is an instance of one of the reference classes ``convert`` takes (its layers may
    still have been modified: ``convert`` says so with a ValueError / TypeError)."""
    return _key(model) in _CONVERTERS


def convert(model: nn.Module) -> nn.Module:
    """The inception_core equivalent of a reference Inception network.

    Accepts torchvision ``googlenet`` / ``inception_v3``, timm ``inception_v3`` / ``inception_v4`` /
    ``inception_resnet_v2``, pretrainedmodels ``bninception`` / ``inceptionresnetv2`` and facenet-pytorch
    ``InceptionResnetV1``, and the FID networks of pytorch-fid (``InceptionV3``) and torch-fidelity
    (``FeatureExtractorInceptionV3``). The result holds the same weights (loaded strictly; Cadene's ``last_linear``
    becomes ``classif``), sits on the same device with the same dtype and memory format, and is in the
    same train/eval mode. The input model is not modified.

    Raises:
        TypeError: ``model`` is not one of the networks above, or its classifier is not the reference's
            ``nn.Linear`` (``fc``, ``last_linear``).
        ValueError: its parameters differ from the reference network's (a modified layer).
    """
    key = _key(model)
    if key not in _CONVERTERS:
        known = ", ".join(f"{m}.{c}" for m, c in _CONVERTERS)
        raise TypeError(f"model: expected one of {known}; got {key[0]}.{key[1]}")
    ours = _CONVERTERS[key](model)
    state = model.state_dict()
    if key[0].startswith("pretrainedmodels.models.inceptionresnetv2"):
        from inception_core.models.inception_resnet_v2 import remap_cadene_inception_resnet_v2

        state = remap_cadene_inception_resnet_v2(state)
    ref_param = next(model.parameters())
    ours = ours.to(device=ref_param.device, dtype=ref_param.dtype)
    try:
        ours.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"model: its parameters do not match the reference {key[0]}.{key[1]} as its builder makes "
                         f"it (modified layers?): {str(exc).splitlines()[0][:300]}") from exc
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    if weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        ours = ours.to(memory_format=torch.channels_last)
    return ours.train(model.training)
