"""One eval forward of each named network on the cuda backend (csrc/), compared with the torch backend:
the program that ``compute-sanitizer --tool memcheck`` runs in benchmarks/gpu_run.sh.

Random weights (inception_core.testing.randomize_for_equivalence), channels_last, batch 1 at the native
input size by default. Prints the max relative error of the logits against the torch backend in fp32 per
network and dtype; exits 1 when a result holds NaN or fails the pass rule (fp32: within 1e-3, the torch
backend's convolutions may use TF32; fp16/bf16: within 2x the torch backend's own error in that dtype,
plus one rounding step).

Usage: python tools/cuda_backend_forward.py [--models inception_v3,inception_resnet_v2] [--dtypes fp32,bf16]
       compute-sanitizer --tool memcheck --error-exitcode 1 python tools/cuda_backend_forward.py
"""

import argparse
import copy
import sys

import torch

import inception_core as ic
from inception_core.shapes import NATIVE_INPUT
from inception_core.testing import randomize_for_equivalence, rel_err

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
FP32_TOLERANCE = 1e-3


def forward(model: torch.nn.Module, images: torch.Tensor, backend: str) -> torch.Tensor:
    with torch.no_grad(), ic.backend(backend):
        return model(images).float()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="inception_v3,inception_resnet_v2")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("cuda_backend_forward: needs a CUDA device", file=sys.stderr)
        return 2
    status = ic.backends.cuda_status(torch.device("cuda"))
    if status is not None:
        print(f"cuda_backend_forward: the cuda backend cannot run here: {status}", file=sys.stderr)
        return 2
    failed = 0
    for name in args.models.split(","):
        model = randomize_for_equivalence(ic.models.create_model(name)).cuda().eval()
        model = model.to(memory_format=torch.channels_last)
        size = NATIVE_INPUT[name]
        images = torch.randn(args.batch_size, 3, size, size, device="cuda")
        images = images.contiguous(memory_format=torch.channels_last)
        ref = forward(model, images, "torch")
        for dtype_name in args.dtypes.split(","):
            dtype = DTYPES[dtype_name]
            net = copy.deepcopy(model).to(dtype)  # the fp32 weights stay intact for the next dtype
            x = images.to(dtype)
            err = rel_err(forward(net, x, "cuda"), ref)
            if dtype == torch.float32:
                bound, torch_note = FP32_TOLERANCE, ""
            else:
                torch_err = rel_err(forward(net, x, "torch"), ref)
                bound, torch_note = 2 * torch_err + torch.finfo(dtype).eps, f" (torch backend {torch_err:.2e})"
            ok = err == err and err <= bound
            failed += not ok
            print(f"{name:<22} {dtype_name:<5} max rel err of the logits vs torch fp32 {err:.2e}{torch_note} "
                  f"{'ok' if ok else 'FAIL'}")
    torch.cuda.synchronize()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
