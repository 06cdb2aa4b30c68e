"""The ``inception-core`` command: ``check`` (kernels against the reference on this machine), ``info``."""

from __future__ import annotations

import argparse
import os
import sys


def _prepare_interpreter() -> None:
    """On a machine without CUDA, run the Triton kernels through the interpreter. Must happen before
    inception_core.kernels is imported (TRITON_INTERPRET is read when the kernels are decorated)."""
    import torch

    if not torch.cuda.is_available() and "TRITON_INTERPRET" not in os.environ:
        os.environ["TRITON_INTERPRET"] = "1"


def _cmd_check(args: argparse.Namespace) -> int:
    _prepare_interpreter()
    import torch

    from inception_core.check import DTYPES, run_check
    from inception_core.shapes import MODELS

    dtypes = args.dtypes.split(",")
    models = args.models.split(",") if args.models else MODELS
    for d in dtypes:
        if d not in DTYPES:
            raise SystemExit(f"--dtypes: expected a comma list of {list(DTYPES)}, got {d!r}")
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"--models: expected a comma list of {list(MODELS)}, got {m!r}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ops = tuple(args.ops.split(","))
    failed = run_check(torch.device(device), dtypes=dtypes, models=tuple(models), op_kinds=ops,
                       batch=args.batch_size, reduce=True if args.reduced else None, verbose=not args.quiet,
                       json_path=args.json)
    return 1 if failed else 0


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    import inception_core
    from inception_core import backends

    print(f"inception_core {inception_core.__version__}")
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    err = backends._triton_import_error()
    if err is None:
        import triton

        print(f"triton {triton.__version__}")
    else:
        print(f"triton: unavailable ({err})")
    print(f"backend setting: {backends.get_backend()}; TRITON_INTERPRET: {backends.interpreter_enabled()}")
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    for d in devices:
        dev = torch.device(d)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        print(f"  {d} ({name}): auto -> {backends.resolve_backend(dev, 'info')}; triton: "
              f"{backends.triton_status(dev) or 'available'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inception-core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="every op over the networks' shapes, every backend vs the reference")
    check.add_argument("--device", help="cpu or cuda[:i] (default: cuda when available)")
    check.add_argument("--dtypes", default="fp32,fp16,bf16", help="comma list of fp32, fp16, bf16")
    check.add_argument("--models", default="", help="comma list of networks (default: all six)")
    check.add_argument("--ops", default="conv,pool", help="comma list of conv, pool")
    check.add_argument("--batch-size", type=int, default=None, help="default 2 (reduced sizes) or 4 (native)")
    check.add_argument("--reduced", action="store_true", help="reduced spatial sizes on a GPU too")
    check.add_argument("--quiet", action="store_true", help="print failing rows and the summary only")
    check.add_argument("--json", help="also write the rows to this JSON file")
    check.set_defaults(func=_cmd_check)
    info = sub.add_parser("info", help="versions, devices and the backend each would use")
    info.set_defaults(func=_cmd_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
