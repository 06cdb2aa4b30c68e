"""The six networks and their reference implementations, as the network tests use them: one ``Network``
entry per registry name, and ``network_pair(name)``: (reference, ours) with the same random weights and
BatchNorm statistics, built once and shared by the tests of this folder (the two most recent are kept)."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from inception_core.bench.references import randomized_reference
from inception_core.models import create_model


def _thin_v3(model: nn.Module) -> nn.Module:
    """Mixed_5b, 5c (5c's 288 channels feed Mixed_6a), 6a, 6b, 7a, 7b: every block kind of the network."""
    thin = copy.deepcopy(model)
    for name in ("Mixed_5d", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"):
        setattr(thin, name, nn.Identity())
    return thin


def _thin_v4(model: nn.Module) -> nn.Module:
    """One block of each kind, in network order (stem convs, Mixed3a/4a/5a, InceptionA, ReductionA,
    InceptionB, ReductionB, InceptionC; channel counts chain, so it is a valid network)."""
    thin = copy.deepcopy(model)
    thin.features = nn.Sequential(*[thin.features[i] for i in (0, 1, 2, 3, 4, 5, 6, 10, 11, 18, 19)])
    return thin


def _thin_irv2(model: nn.Module) -> nn.Module:
    """One Block35, one Block17, no Block8 but the final no-ReLU ``block8``: every kind of layer."""
    thin = copy.deepcopy(model)
    thin.repeat, thin.repeat_1, thin.repeat_2 = thin.repeat[:1], thin.repeat_1[:1], thin.repeat_2[:0]
    return thin


def _scale(factor: float, rows: int | None = None) -> Callable[[torch.Tensor], None]:
    def change(t: torch.Tensor) -> None:
        (t if rows is None else t[:rows]).mul_(factor)
    return change


@dataclass(frozen=True)
class Network:
    """What the network tests need to know about one network and its reference."""

    name: str                                  # registry name
    reference: dict                            # options of bench.references.build_reference for it
    params: int                                # parameter count (the reference's; models.md)
    native: int                                # native input size: the eval comparison
    features: tuple[int, int, int]             # forward_features shape at ``native`` (C, H, W)
    outputs: int                               # output width (logits or embedding)
    pooled: int                                # forward_head(pre_logits=True) width
    small: int                                 # the cheap checks' input size (layout, heads, fused path)
    changes: tuple[tuple[str, Callable], ...]  # in-place edits of a parameter / buffer (path) for the fold cache
    repr_has: tuple[str, ...]                  # names the repr shows
    kwargs: dict = field(default_factory=dict)  # our builder's arguments matching the reference
    ref_features: str | None = None            # the reference's method giving our forward_features
    ref_head: str | None = None                # ... and the one giving our forward_head
    fold_size: int | None = None               # input of the fold-cache check (default: small)
    fold_on_features: bool = False             # compare features there (the head needs a larger input)
    triton: Callable[[nn.Module], nn.Module] | None = None  # the network the interpreted triton check runs
    triton_thinned: bool = False               # ``triton`` keeps one block of each kind (the full one: -m slow)


NETWORKS: dict[str, Network] = {n.name: n for n in (
    Network("googlenet", {}, 13_004_888, 224, (1024, 7, 7), 1000, 1024, 64,
            (("inception3a.branch2.1.bn.running_var", _scale(4.0)),),
            ("GoogLeNet", "Inception", "MaxPool2d"), kwargs=dict(init_weights=False)),
    Network("bn_inception", {}, 11_295_240, 224, (1024, 7, 7), 1000, 1024, 224,
            (("inception_3a_double_3x3_1_bn.running_var", _scale(4.0)),),
            ("BNInception", "inception_5b_pool", "last_linear"), ref_features="features", ref_head="logits",
            fold_size=96, fold_on_features=True),  # the port's features take 96; only its 7x7 head needs 224
    Network("inception_v3", {}, 27_161_264, 299, (2048, 8, 8), 1000, 2048, 75,
            (("Mixed_6b.branch7x7dbl_1.bn.running_var", _scale(4.0, rows=8)),  # inside a stacked 1x1 GEMM
             ("Conv2d_1a_3x3.bn.running_var", _scale(2.0))),  # the stem
            ("Mixed_7c", "InceptionE", "AuxLogits"), kwargs=dict(init_weights=False), triton=_thin_v3,
            triton_thinned=True),
    Network("inception_v4", {}, 42_679_816, 299, (1536, 8, 8), 1000, 1536, 107,  # 2x2 last
            (("features.11.branch1.1.bn.running_var", _scale(4.0)),),
            ("InceptionV4(", "InceptionC(", "Branch("), ref_features="forward_features", ref_head="forward_head",
            fold_size=75, triton=_thin_v4, triton_thinned=True),
    Network("inception_resnet_v1", dict(num_classes=None), 23_482_624, 160, (1792, 3, 3), 512, 512, 75,
            (("repeat_1.2.branch2.1.bn.running_var", _scale(4.0)),),
            ("InceptionResnetV1", "Block35", "scale=0.17", "relu=False")),
    Network("inception_resnet_v2", {}, 55_843_464, 299, (1536, 8, 8), 1000, 1536, 107,
            (("repeat.3.branch2.1.bn.running_var", _scale(4.0)),  # a BN inside a residual block
             ("repeat_1.5.conv2d.bias", lambda t: t.add_(0.5))),  # an up-projection's bias (no BN: in the shift)
            ("InceptionResnetV2(", "Block35(", "scale=1.0, relu=False"), ref_features="forward_features",
            ref_head="forward_head", fold_size=75, triton=_thin_irv2, triton_thinned=True),
)}

_PAIRS: OrderedDict[str, tuple[nn.Module, nn.Module]] = OrderedDict()
_KEEP = 2


def network_pair(name: str) -> tuple[nn.Module, nn.Module]:
    """(reference, ours) in eval mode with the same state (He-initialised weights, random BatchNorm
    statistics), ours loaded strictly from the reference's state_dict. Shared: copy before changing."""
    if name in _PAIRS:
        _PAIRS.move_to_end(name)
        return _PAIRS[name]
    net = NETWORKS[name]
    ref = randomized_reference(name, seed=1, **net.reference)
    ours = create_model(name, **net.kwargs).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    _PAIRS[name] = ref, ours
    while len(_PAIRS) > _KEEP:
        _PAIRS.popitem(last=False)
    return ref, ours
