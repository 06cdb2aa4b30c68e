"""The ``inception-core`` command: ``bench`` (the six networks against their reference implementations),
``check`` (every fused op against the reference on this machine), ``info``, ``train`` (the papers' training
recipe), ``fid`` / ``isc``, ``tune``, ``warmup``. Building the parser imports neither torch nor triton: each
command imports what it runs."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time


def _prepare_interpreter() -> None:
    """On a machine without CUDA, run the Triton kernels through the interpreter. Must happen before
    inception_core.kernels is imported (TRITON_INTERPRET is read when the kernels are decorated)."""
    import torch

    if not torch.cuda.is_available() and "TRITON_INTERPRET" not in os.environ:
        os.environ["TRITON_INTERPRET"] = "1"


def _parse_device(value: str | None, parser: argparse.ArgumentParser):
    """``--device`` as a torch.device: cpu or cuda[:i] (default: cuda when available); a usage error (one
    line, exit status 2) for anything else, for CUDA on a machine without it, and for a missing index."""
    import torch

    try:
        device = torch.device(value or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError, ValueError):
        parser.error(f"--device: expected cpu or cuda[:i], got {value!r}")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device: expected cpu or cuda[:i], got {value!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {value}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        parser.error(f"--device {value}: this machine has {torch.cuda.device_count()} CUDA devices")
    return device


def _cmd_check(args: argparse.Namespace) -> int:
    parser = args.parser
    _prepare_interpreter()
    from inception_core.check import DTYPES, OP_KINDS, run_check
    from inception_core.shapes import MODELS

    dtypes = _comma_list(args.dtypes, DTYPES, "--dtypes", parser)
    models = _comma_list(args.models, MODELS, "--models", parser) if args.models else MODELS
    ops = _comma_list(args.ops, OP_KINDS, "--ops", parser)
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f"--batch-size: expected >= 1, got {args.batch_size}")
    device = _parse_device(args.device, parser)
    failed = run_check(device, dtypes=dtypes, models=tuple(models), op_kinds=tuple(ops),
                       batch=args.batch_size, reduce=True if args.reduced else None, verbose=args.verbose,
                       json_path=args.json)
    return 1 if failed else 0


class _Progress:
    """A progress bar on stderr: tqdm when it is installed, else one line per step."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.done, self.current = total, 0, None
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, desc=desc, unit="run", file=sys.stderr, leave=False, dynamic_ncols=True)

    def start(self, label: str) -> None:
        self._finish_current()
        self.current = label
        if self.bar is not None:
            self.bar.set_postfix_str(label)
        else:
            print(f"[{self.done + 1}/{self.total}] {label}", file=sys.stderr, flush=True)

    def skip(self, steps: int) -> None:
        self.done += steps
        if self.bar is not None:
            self.bar.update(steps)

    def _finish_current(self) -> None:
        if self.current is not None:
            self.current = None
            self.skip(1)

    def close(self) -> None:
        self._finish_current()
        if self.bar is not None:
            self.bar.close()


def _comma_list(value: str, allowed, option: str, parser: argparse.ArgumentParser) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        parser.error(f"{option}: expected a comma list of {', '.join(allowed)}; got {value!r}")
    return items


def _check_writable(path: str, option: str, parser: argparse.ArgumentParser) -> None:
    """A usage error now when ``path`` cannot be written (its folder is created, as the writers do)."""
    from pathlib import Path

    target = Path(path)
    if target.is_dir():
        parser.error(f"{option} {path}: is a folder, expected a file path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        existed = target.exists()
        with open(target, "a", encoding="utf-8"):
            pass
        if not existed:
            target.unlink()
    except OSError as exc:
        parser.error(f"{option} {path}: cannot be written ({exc.strerror or exc})")


def _cmd_bench(args: argparse.Namespace) -> int:
    parser = args.parser
    import torch

    import inception_core
    from inception_core import backends, bench

    models = _comma_list(args.models, bench.NETWORKS, "--models", parser) if args.models else list(bench.NETWORKS)
    device = _parse_device(args.device, parser)
    on_gpu = device.type == "cuda"
    batch = args.batch_size if args.batch_size is not None else ((256 if args.mode == "infer" else 128)
                                                                 if on_gpu else 8)
    if batch < 1 or (args.mode == "train" and batch < 2):
        parser.error(f"--batch-size: expected an integer >= {2 if args.mode == 'train' else 1}"
                     f"{' (BatchNorm statistics need two images in training)' if args.mode == 'train' else ''}, "
                     f"got {batch}")
    dtype_name = args.dtype or ("bf16" if on_gpu else "fp32")
    dtype = bench.DTYPES[dtype_name]
    if args.backend == "triton" and not on_gpu and not backends.interpreter_enabled():
        parser.error("--backend triton: the Triton kernels run on CUDA devices; on a CPU only through Triton's "
                     "interpreter (TRITON_INTERPRET=1), which checks kernels and is far too slow to benchmark "
                     "whole networks; use --backend torch (the default here)")
    ours_backend = bench.ours_backend(device, args.backend)
    use_compile = args.compile if args.compile is not None else on_gpu
    compile_mode = args.compile_mode or bench.default_compile_mode(device)
    compile_mode = None if compile_mode == "default" else compile_mode
    warmup = args.warmup if args.warmup is not None else (3 if on_gpu else 1)
    rounds = args.rounds if args.rounds is not None else (20 if on_gpu else 3)
    if rounds < 1:
        parser.error(f"--rounds: expected an integer >= 1, got {rounds}")
    if warmup < 0:
        parser.error(f"--warmup: expected an integer >= 0, got {warmup}")
    for option, path in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)):
        if path:
            _check_writable(path, option, parser)  # before the run, not after it
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # eager's best case for fixed shapes, as users run it

    providers = ["inception_core", "eager"] + (["fx_fused"] if args.mode == "infer" else []) + (
        ["compiled"] if use_compile else [])
    if use_compile:
        compiled = f"torch.compile(mode={compile_mode!r})" if compile_mode else "torch.compile (default mode)"
        compiled += ", freezing" if args.mode == "infer" else ""
    else:
        compiled = "skipped"
    mode_words = {"infer": "inference", "train": "training step"}[args.mode]
    print(f"inception-core bench: {mode_words}, {dtype_name}, batch {batch}, channels_last, native input sizes, "
          f"on {bench.device_name(device)}")
    print(f"  inception_core: {ours_backend} backend"
          + (("; training on torch's own conv and BatchNorm modules behind the fused layers" if ours_backend == "torch"
              else "; training on the fused training ops") if args.mode == "train" else ""))
    print("  eager: the reference implementations (torchvision, timm, pretrainedmodels, facenet-pytorch)"
          + (", autocast" if dtype != torch.float32 else "") + (", cudnn.benchmark" if on_gpu else ""))
    if args.mode == "infer":
        print("  fx_fused: the references after torch.fx.experimental.optimization.fuse (BatchNorm folded into "
              "the convolutions), channels_last")
    if use_compile:
        print(f"  compiled: the references under {compiled}")
    else:
        why = ("--no-compile" if args.compile is False else
               "off by default on a CPU, where torch.compile takes 20-60 s per network; --compile includes it")
        print(f"  compiled: skipped ({why})")
    print(f"  timing: {warmup} warm-up + {rounds} interleaved rounds (each provider once per round), median per "
          f"provider and median per-round ratio [q1-q3] ({'CUDA events' if on_gpu else 'perf_counter'}); "
          "max rel diff: logits vs the reference in full fp32")

    command = "inception-core " + shlex.join(args.argv)
    meta = bench.run_metadata(device, command=command, mode=args.mode, dtype=dtype_name, batch=batch,
                              backend=ours_backend, compile=compiled, warmup=warmup, rounds=rounds)
    start = time.perf_counter()
    progress = _Progress(len(models) * len(providers), "bench")
    results, skipped = [], []
    for name in models:
        try:
            pair = bench.build_pair(name)
        except bench.ReferenceUnavailable as exc:
            skipped.append(str(exc))
            progress.skip(len(providers))
            continue
        results += bench.run_network(pair, providers=providers, device=device, dtype=dtype, mode=args.mode,
                                     batch=batch, backend=args.backend, compile_mode=compile_mode, warmup=warmup,
                                     rounds=rounds, on_provider=lambda n, p: progress.start(f"{n} {p}"))
    progress.close()
    elapsed = time.perf_counter() - start
    meta["wall_s"] = round(elapsed, 1)
    meta["loadavg_end"] = bench.load_average()
    tuning = inception_core.autotune_stats()
    meta["autotune"] = {k: tuning[k] for k in ("tuned", "tune_s", "disk_hits", "memory_hits", "cache_dir")}
    print()
    if results:
        print(bench.format_table(results))
        print(bench.rounds_line(results) + f"; load average {meta['loadavg']} at the start, "
              f"{meta['loadavg_end']} at the end")
    for reason in skipped:
        print(f"skipped {reason}")
    if tuning["tuned"] or tuning["disk_hits"]:
        print(f"autotuning: {tuning['tuned']} problems tuned in {tuning['tune_s']:.1f} s, {tuning['disk_hits']} "
              f"read from the cache ({tuning['cache_dir']})")
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} runs, {len(failed)} failed, {len(skipped)} networks skipped "
          f"in {elapsed:.0f} s")
    if args.json:
        bench.write_json(args.json, meta, results)
        print(f"wrote {args.json}")
    if args.markdown:
        bench.write_markdown(args.markdown, meta, results)
        print(f"wrote {args.markdown}")
    if args.plot:
        try:
            bench.plot_results(args.plot, meta, results)
        except ImportError as exc:
            print(f"--plot: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.plot}")
    return 1 if failed else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from inception_core.train.runner import run_from_args

    return run_from_args(args, args.parser)


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    import inception_core
    from inception_core import backends

    try:
        setting = backends.get_backend()
    except ValueError as exc:  # a bad INCEPTION_CORE_BACKEND: every op would raise the same
        args.parser.exit(2, f"{args.parser.prog}: error: {exc}\n")
    print(f"inception_core {inception_core.__version__}")
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    err = backends._triton_import_error()
    if err is None:
        import triton

        print(f"triton {triton.__version__}")
    else:
        print(f"triton: unavailable ({err})")
    from inception_core import _cuda_ext

    print(f"cuda backend (csrc/): {_cuda_ext.prebuilt_error() or 'prebuilt extension inception_core._C loaded'}")
    print(f"backend setting: {setting}; TRITON_INTERPRET: {backends.interpreter_enabled()}")
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    for d in devices:
        dev = torch.device(d)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        print(f"  {d} ({name}): auto -> {backends.resolve_backend(dev, 'info')}; triton: "
              f"{backends.triton_status(dev) or 'available'}; cuda: {backends.cuda_status(dev) or 'available'}")
    return 0


def _cmd_fid(args: argparse.Namespace) -> int:
    from inception_core.fid.cli import main_fid

    return main_fid(args)


def _cmd_isc(args: argparse.Namespace) -> int:
    from inception_core.fid.cli import main_isc

    return main_isc(args)


def _cmd_tune(args: argparse.Namespace) -> int:
    from inception_core.tune import main_tune

    return main_tune(args)


def _cmd_warmup(args: argparse.Namespace) -> int:
    from inception_core.warmup import main_warmup

    return main_warmup(args)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; importing it imports neither torch nor triton (``--help`` at once)."""
    from inception_core import tune as tune_cli
    from inception_core import warmup as warmup_cli
    from inception_core.fid import options as fid_options
    from inception_core.train.config import DESCRIPTION, add_train_arguments

    parser = argparse.ArgumentParser(
        prog="inception-core",
        description="Fused kernels and drop-in layers for the Inception networks. Start with 'bench' (the main job: "
                    "the six networks against their reference implementations on this machine) and 'check' (every "
                    "fused op against the float64 reference); 'inception-core COMMAND --help' for each command.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "bench", help="the main job: the six networks against their reference implementations",
        description="Each network (native input size, random weights shared by ours and the reference) with "
                    "inception_core, the reference eager, in inference the reference after torch.fx fuse "
                    "(fx_fused), and the reference under torch.compile, timed in interleaved rounds: a table of "
                    "images/s, speed-ups and the output difference. Defaults: on a GPU batch 256 (training "
                    "128), bf16, the Triton kernels, compile on; on a CPU batch 8, fp32, the torch backend (oneDNN "
                    "convolutions with BatchNorm folded in inference, torch's own modules in training; the "
                    "README gives its CPU figures), compile off. No result file is written unless --json, "
                    "--markdown or --plot names one.")
    bench.add_argument("--models", default="", help="comma list of networks (default: all six)")
    bench.add_argument("--batch-size", type=int, default=None,
                       help="images per call (default: GPU 256, training 128; CPU 8)")
    bench.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default=None,
                       help="compute dtype; fp16/bf16 via autocast (default: bf16 GPU, fp32 CPU)")
    bench.add_argument("--backend", choices=["auto", "triton", "torch"], default="auto",
                       help="inception_core's backend (auto: triton on CUDA, torch on CPU)")
    bench.add_argument("--mode", choices=["infer", "train"], default="infer",
                       help="inference, or a training step (forward, loss with aux heads, backward, SGD step)")
    bench.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                       help="include the reference under torch.compile (default: on with CUDA, off on CPU)")
    bench.add_argument("--compile-mode", default=None,
                       help="torch.compile mode (default: max-autotune on CUDA, 'default' on CPU)")
    bench.add_argument("--device", help="cpu or cuda[:i] (default: cuda when available)")
    bench.add_argument("--warmup", type=int, default=None, help="untimed calls after the first (default 3 GPU, 1 CPU)")
    bench.add_argument("--rounds", type=int, default=None,
                       help="timed rounds, each calling every provider once (interleaved; default 20 GPU, 3 CPU)")
    bench.add_argument("--json", help="write the results (with device, versions, commit, command) to this JSON file")
    bench.add_argument("--markdown", help="write a short Markdown report to this file")
    bench.add_argument("--plot", help="write a bar chart PNG here (needs matplotlib: the 'plot' extra)")
    bench.set_defaults(func=_cmd_bench, parser=bench)
    check = sub.add_parser(
        "check", help="every fused op, forward and backward, over the networks' shapes, every backend vs the reference",
        description="Every fused op (conv_bn_act, conv_bn_act_train, the pooling ops, and the gradients of each) over "
                    "the six networks' layer shapes, on every backend that can run here, against the float64 torch "
                    "reference; prints a summary per op, backend and dtype and every failing row; exit status 1 "
                    "when a row fails. Without a GPU the Triton kernels run through Triton's interpreter at "
                    "reduced spatial sizes (slow: select with --ops, --models, --dtypes).")
    check.add_argument("--device", help="cpu or cuda[:i] (default: cuda when available)")
    check.add_argument("--dtypes", default="fp32,fp16,bf16", help="comma list of fp32, fp16, bf16")
    check.add_argument("--models", default="", help="comma list of networks (default: all six)")
    check.add_argument("--ops", default="conv,conv_train,pool,conv_backward,conv_train_backward,pool_backward",
                       help="comma list of conv, conv_train, pool, conv_backward, conv_train_backward, "
                            "pool_backward (default: all)")
    check.add_argument("--batch-size", type=int, default=None, help="default 2 (reduced sizes) or 4 (native)")
    check.add_argument("--reduced", action="store_true", help="reduced spatial sizes on a GPU too")
    check.add_argument("--verbose", action="store_true",
                       help="print every row (default: the summary per op, backend and dtype, and failing rows)")
    check.add_argument("--json", help="also write the rows to this JSON file")
    check.set_defaults(func=_cmd_check, parser=check)
    info = sub.add_parser("info", help="versions, devices and the backend each would use")
    info.set_defaults(func=_cmd_info, parser=info)
    train = sub.add_parser("train", help="train a network with the papers' recipe (torchrun for several processes)",
                           description=DESCRIPTION)
    add_train_arguments(train)
    train.set_defaults(func=_cmd_train, parser=train)
    fid = sub.add_parser("fid", help="FID (and KID) between two folders of images or .npz stats files",
                         description=fid_options.DESCRIPTION)
    fid_options.add_fid_arguments(fid)
    fid.set_defaults(func=_cmd_fid, parser=fid)
    isc = sub.add_parser("isc", help="Inception Score of a folder of images", description=fid_options.DESCRIPTION)
    fid_options.add_isc_arguments(isc)
    isc.set_defaults(func=_cmd_isc, parser=isc)
    tune = sub.add_parser("tune", help="time every config of the networks' problems, write a tuned table",
                          description=tune_cli.__doc__)
    tune_cli.add_tune_arguments(tune)
    tune.set_defaults(func=_cmd_tune, parser=tune)
    warmup = sub.add_parser("warmup", help="compile ahead, in parallel, the Triton variants the networks will launch",
                            description=warmup_cli.__doc__)
    warmup_cli.add_warmup_arguments(warmup)
    warmup.set_defaults(func=_cmd_warmup, parser=warmup)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)  # args.parser: the subcommand's, for its usage errors
    args.argv = argv
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
