"""Each network against its reference implementation: parameter counts, max relative output difference
(torch backend, eval, native input size, batch 2, He-initialised weights and random BN statistics), and
how many fused conv launches the eval forward makes (horizontal fusion merges sibling 1x1 convs).

Usage: python tools/model_equivalence.py   (needs the test extras and the two --no-deps packages)
       python tools/model_equivalence.py --triton   (the triton backend at 75x75, batch 1; on a machine
       without CUDA through Triton's interpreter: a few minutes)
       python tools/model_equivalence.py --networks inception_resnet_v1   (a subset)
"""

import argparse
import os

# (network, options of its reference in inception_core.bench.references, native input size): no auxiliary
# heads, facenet's embedding network
CASES = [
    ("googlenet", dict(aux_logits=False), 224),
    ("bn_inception", {}, 224),
    ("inception_v3", dict(aux_logits=False), 299),
    ("inception_v4", {}, 299),
    ("inception_resnet_v1", dict(num_classes=None), 160),
    ("inception_resnet_v2", {}, 299),
]
_NAMES = [name for name, _, _ in CASES]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triton", action="store_true",
                        help="run ours on the triton backend at 75x75, batch 1 (Triton's interpreter without CUDA); "
                             "googlenet and bn_inception are left out")
    parser.add_argument("--networks", nargs="+", choices=_NAMES, default=_NAMES, metavar="NAME",
                        help=f"the networks to compare (default: all of {', '.join(_NAMES)})")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    if args.triton and not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before inception_core's kernels are imported

    import inception_core as ic
    import inception_core.nn.functional as icf
    from inception_core.bench.references import build_reference, randomized_reference
    from inception_core.testing import rel_err

    cases = [case for case in CASES if case[0] in args.networks]
    backend_name = "triton" if args.triton else "torch"
    for name, options, size in cases:
        if args.triton:
            if name in ("googlenet", "bn_inception"):
                continue  # BN-Inception's head needs 224; both are covered at native size on the torch backend
            size = 75  # the smallest input the other four accept
        ref = randomized_reference(name, **options)
        ours = ic.convert(ref)
        x = torch.randn(1 if args.triton else 2, 3, size, size)
        with torch.no_grad():
            r = ref(x)
            with ic.backend(backend_name):
                o = ours(x)
        n_ref = sum(p.numel() for p in ref.parameters())
        n_ours = sum(p.numel() for p in ours.parameters())
        print(f"{name:22s} {backend_name} {size} params {n_ours:,} (ref {n_ref:,})  max rel diff {rel_err(o, r):.2e}",
              flush=True)
    if args.triton:
        return
    # fused-path conv launches vs conv layers (horizontal fusion coverage)
    calls = []
    real = icf.ops.conv_bn_act
    icf.ops.conv_bn_act = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    for name, options, size in cases:
        ours = ic.convert(build_reference(name, **options).eval())
        convs = sum(isinstance(m, torch.nn.Conv2d) for m in ours.modules())
        calls.clear()
        with torch.no_grad(), ic.backend("torch"):
            ours(torch.randn(1, 3, size, size))
        print(f"{name:22s} conv layers {convs:3d}  fused conv launches {len(calls):3d}", flush=True)


if __name__ == "__main__":
    main()
