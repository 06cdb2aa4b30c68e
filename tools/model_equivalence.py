"""Each network against its reference implementation: parameter counts, max relative output difference
(torch backend, eval, native input size, batch 2, He-initialised weights and random BN statistics), and
how many fused conv launches the eval forward makes (horizontal fusion merges sibling 1x1 convs).

Usage: python tools/model_equivalence.py   (needs the test extras and the two --no-deps packages)
       python tools/model_equivalence.py --triton   (the triton backend at 75x75, batch 1; on a machine
       without CUDA through Triton's interpreter: a few minutes)
"""

import os
import sys

import torch  # noqa: I001  (TRITON_INTERPRET must be set before inception_core's kernels are imported)

if "--triton" in sys.argv and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import facenet_pytorch
import pretrainedmodels
import timm
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
TRITON = "--triton" in sys.argv
for name, build, size in cases:
    if TRITON:
        if name in ("googlenet", "bn_inception"):
            continue  # BN-Inception's head needs 224; both are covered at native size on the torch backend
        size = 75  # the smallest input the other four accept
    torch.manual_seed(0)
    ref = randomize_for_equivalence(build().eval())
    ours = ic.convert(ref)
    x = torch.randn(1 if TRITON else 2, 3, size, size)
    with torch.no_grad():
        r = ref(x)
        with ic.backend("triton" if TRITON else "torch"):
            o = ours(x)
    n_ref = sum(p.numel() for p in ref.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())
    backend_name = "triton" if TRITON else "torch"
    print(f"{name:22s} {backend_name} {size} params {n_ours:,} (ref {n_ref:,})  max rel diff {rel_err(o, r):.2e}",
          flush=True)
if TRITON:
    sys.exit(0)
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
