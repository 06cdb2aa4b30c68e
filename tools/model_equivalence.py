"""Each network against its reference implementation: parameter counts, max relative output difference
(torch backend, eval, native input size, batch 2, He-initialised weights and random BN statistics), and
how many fused conv launches the eval forward makes (horizontal fusion merges sibling 1x1 convs).

Usage: python tools/model_equivalence.py   (needs the test extras and the two --no-deps packages)
"""

import facenet_pytorch
import pretrainedmodels
import timm
import torch
import torchvision

import inception_core as ic
import inception_core.nn.functional as icf
from inception_core.testing import randomize_for_equivalence, rel_err

cases = [
    ("googlenet", lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False), 224),
    ("bn_inception", lambda: pretrainedmodels.bninception(num_classes=1000, pretrained=None), 224),
    ("inception_v3", lambda: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False), 299),
    ("inception_v4", lambda: timm.create_model("inception_v4"), 299),
    ("inception_resnet_v1", lambda: facenet_pytorch.InceptionResnetV1(pretrained=None, classify=False), 160),
    ("inception_resnet_v2", lambda: timm.create_model("inception_resnet_v2"), 299),
]
for name, build, size in cases:
    torch.manual_seed(0)
    ref = randomize_for_equivalence(build().eval())
    ours = ic.convert(ref)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        r = ref(x)
        with ic.backend("torch"):
            o = ours(x)
    n_ref = sum(p.numel() for p in ref.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())
    print(f"{name:22s} {size} params {n_ours:,} (ref {n_ref:,})  max rel diff {rel_err(o, r):.2e}", flush=True)
# fused-path conv launches vs conv layers (horizontal fusion coverage)
calls = []
real = icf.ops.conv_bn_act
icf.ops.conv_bn_act = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
for name, build, size in cases:
    ours = ic.convert(build().eval())
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in ours.modules())
    calls.clear()
    with torch.no_grad(), ic.backend("torch"):
        ours(torch.randn(1, 3, size, size))
    print(f"{name:22s} conv layers {convs:3d}  fused conv launches {len(calls):3d}", flush=True)
