"""``inception-core check``: every op over the networks' shape catalogue, through every backend that
can run on this device, against the torch reference computed in float64.

Each case writes into a channel slice of a NaN-poisoned buffer, and the rest of the buffer is checked
untouched. On a CPU machine the triton backend runs through Triton's interpreter at reduced spatial
sizes (channel counts and kernel geometry kept); on a GPU at the networks' native sizes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch

from inception_core import backends, ops
from inception_core.shapes import CONV_SHAPES, MODELS, POOL_SHAPES
from inception_core.testing import conv_inputs, passes, reduced_size, rel_err

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
OP_KINDS = ("conv", "pool")
PAD = 8  # poisoned channels on each side of the slice the op writes


@dataclass
class Row:
    op: str
    layer: str
    shape: str
    backend: str
    dtype: str
    max_rel_err: float
    ok: bool
    note: str = ""


@dataclass
class Case:
    op: str
    layer: str
    shape: str
    make: Callable[[torch.dtype], tuple]  # dtype -> (run(out, offset), reference float64, out channels)


def _conv_case(s, device, batch: int, reduce: bool) -> Case:
    hw = s.in_hw
    if reduce:
        hw = tuple(reduced_size(hw[i], s.kernel[i], s.stride[i], s.padding[i]) for i in range(2))
    residual = s.bias and s.model.startswith("inception_resnet")  # the residual up-projections
    oh = (hw[0] + 2 * s.padding[0] - s.kernel[0]) // s.stride[0] + 1
    ow = (hw[1] + 2 * s.padding[1] - s.kernel[1]) // s.stride[1] + 1

    def make(dtype):
        x, w, scale, shift = conv_inputs(batch, s.in_channels, s.out_channels, s.kernel, hw, dtype, device)
        res = torch.randn(batch, s.out_channels, oh, ow, device=device).to(dtype) if residual else None
        kw = dict(stride=s.stride, padding=s.padding, act="relu", residual=res, res_scale=0.17 if residual else 1.0)
        ref = ops.conv_bn_act_ref(x.double(), w.double(), scale.double(), shift.double(),
                                  **{**kw, "residual": None if res is None else res.double()})
        return (lambda out, off: ops.conv_bn_act(x, w, scale, shift, **kw, out=out, out_offset=off)), ref

    geom = f"{s.in_channels}->{s.out_channels} {s.kernel[0]}x{s.kernel[1]} s{s.stride[0]} p{s.padding}"
    extra = " +res" if residual else ""
    return Case("conv_bn_act", f"{s.model}.{s.layer}", f"{geom} @{hw[0]}x{hw[1]}{extra}", make)


def _pool_case(s, device, batch: int, reduce: bool) -> Case | None:
    kind, kernel, stride, padding = s.kind, s.kernel, s.stride, s.padding
    hw = s.in_hw
    if kind == "adaptive_avg":
        if kernel != (1, 1):
            return None  # only the global pool is a uniform pooling window (GoogLeNet's aux 4x4 is not)
        kind = "avg"
    if reduce:
        if s.kind == "adaptive_avg" or kernel == hw:  # global pools: kernel follows the reduced size
            hw = (min(hw[0], 5), min(hw[1], 5))
        else:
            hw = tuple(reduced_size(hw[i], kernel[i], stride[i], padding[i]) for i in range(2))
    if s.kind == "adaptive_avg" or kernel == s.in_hw:
        kernel, stride, padding = hw, hw, (0, 0)

    def make(dtype):
        x = torch.randn(batch, s.channels, *hw, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
        if kind == "max":
            kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=s.ceil_mode)
            ref = ops.max_pool2d_ref(x.double(), **kw)
            return (lambda out, off: ops.max_pool2d(x, **kw, out=out, out_offset=off)), ref
        kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=s.ceil_mode,
                  count_include_pad=s.count_include_pad)
        ref = ops.avg_pool2d_ref(x.double(), **kw)
        return (lambda out, off: ops.avg_pool2d(x, **kw, out=out, out_offset=off)), ref

    flags = ("ceil " if s.ceil_mode else "") + ("" if kind == "max" or s.count_include_pad else "excl-pad ")
    shape = f"{s.channels}ch {kernel[0]}x{kernel[1]} s{stride[0]} p{padding[0]} {flags}@{hw[0]}x{hw[1]}"
    return Case(f"{kind}_pool2d", f"{s.model}.{s.layer}", shape.replace("  ", " "), make)


def cases(device, *, models=MODELS, op_kinds=("conv", "pool"), batch: int = 2, reduce: bool = True) -> list[Case]:
    """One case per distinct geometry (and input size) of the selected networks."""
    found: list[Case] = []
    seen: set[str] = set()
    if "conv" in op_kinds:
        for s in CONV_SHAPES:
            if s.model in models:
                c = _conv_case(s, device, batch, reduce)
                if c.shape not in seen:
                    seen.add(c.shape)
                    found.append(c)
    if "pool" in op_kinds:
        for s in POOL_SHAPES:
            if s.model in models:
                c = _pool_case(s, device, batch, reduce)
                if c is not None and (c.op + c.shape) not in seen:
                    seen.add(c.op + c.shape)
                    found.append(c)
    return found


def _run_one(case: Case, dtype: torch.dtype, backend_names: list[str], seed: int) -> Iterator[Row]:
    torch.manual_seed(seed)
    run, ref = case.make(dtype)
    n, k, oh, ow = ref.shape
    errs: dict[str, float] = {}
    for name in ["torch", *[b for b in backend_names if b != "torch"]]:
        out = torch.full((n, k + 2 * PAD, oh, ow), float("nan"), dtype=dtype, device=ref.device)
        out = out.contiguous(memory_format=torch.channels_last)
        note = ""
        try:
            with backends.backend(name):
                y = run(out, PAD)
            err = rel_err(y, ref)
            if not (torch.isnan(out[:, :PAD]).all() and torch.isnan(out[:, PAD + k:]).all()):
                err, note = float("nan"), "wrote outside its channel slice"
        except Exception as exc:  # reported as a failing row, the check goes on
            err, note = float("nan"), f"{type(exc).__name__}: {exc}"[:120]
        errs[name] = err
        if name in backend_names:
            ok = passes(err, dtype, torch_err=errs["torch"], interpreted=backends.interpreter_enabled())
            yield Row(case.op, case.layer, case.shape, name, _dtype_name(dtype), err, ok, note)


def _dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)


def run_check(device: torch.device, *, dtypes=("fp32", "fp16", "bf16"), models=MODELS, op_kinds=("conv", "pool"),
              batch: int | None = None, reduce: bool | None = None, backend_names: list[str] | None = None,
              verbose: bool = True, json_path: str | None = None, stream=None) -> int:
    """Run the check, print the table; returns the number of failing rows, or 1 when no row ran (a
    check of nothing has not passed). Raises ValueError for an unknown dtype, network or op kind, an
    empty selection or a batch < 1, before anything runs."""
    stream = sys.stdout if stream is None else stream  # looked up now: callers may redirect sys.stdout
    device = torch.device(device)
    for name, given, allowed in (("dtypes", dtypes, DTYPES), ("models", models, MODELS),
                                 ("op_kinds", op_kinds, OP_KINDS)):
        bad = [v for v in given if v not in allowed]
        if bad or not given:
            raise ValueError(f"{name}: expected a non-empty selection of {list(allowed)}, got {list(given)}")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise ValueError(f"batch: expected an int >= 1, got {batch!r}")
    if reduce is None:
        reduce = device.type != "cuda" or backends.interpreter_enabled()
    if batch is None:
        batch = 2 if reduce else 4
    if backend_names is None:
        backend_names = [b for b in backends.AVAILABLE_BACKENDS if backends.backend_status(b, device) is None]
    todo = cases(device, models=models, op_kinds=op_kinds, batch=batch, reduce=reduce)
    print(f"inception-core check: {len(todo)} cases x {len(dtypes)} dtypes x backends {backend_names} on "
          f"{_device_name(device)}" + (" (triton via TRITON_INTERPRET, reduced spatial sizes)" if reduce else ""),
          file=stream)
    header = f"{'op':<12} {'layer':<44} {'shape':<44} {'backend':<7} {'dtype':<5} {'max rel err':>11}  result"
    print(header, file=stream)
    print("-" * len(header), file=stream)
    rows: list[Row] = []
    start = time.time()
    for i, case in enumerate(todo):
        for dtype in dtypes:
            for row in _run_one(case, DTYPES[dtype], backend_names, seed=i):
                rows.append(row)
                if verbose or not row.ok:
                    print(f"{row.op:<12} {row.layer[:44]:<44} {row.shape[:44]:<44} {row.backend:<7} {row.dtype:<5} "
                          f"{row.max_rel_err:>11.2e}  {'pass' if row.ok else 'FAIL ' + row.note}", file=stream)
    failed = [r for r in rows if not r.ok]
    print("-" * len(header), file=stream)
    for name in backend_names:
        for dtype in dtypes:
            sel = [r for r in rows if r.backend == name and r.dtype == dtype]
            if sel:
                worst = max(sel, key=lambda r: float("inf") if r.max_rel_err != r.max_rel_err else r.max_rel_err)
                print(f"{name:<7} {dtype:<5} {len(sel):>4} rows, max rel err {worst.max_rel_err:.2e} "
                      f"({worst.op} {worst.layer})", file=stream)
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed in {time.time() - start:.0f} s", file=stream)
    if not rows:
        print("nothing was checked: no case of the selected networks and ops ran", file=stream)
    if json_path:
        meta = dict(device=_device_name(device), torch=torch.__version__, triton=_triton_version(),
                    interpreted=backends.interpreter_enabled(), reduced=reduce, batch=batch)
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(dict(meta=meta, rows=[asdict(r) for r in rows]), f, indent=1)
    return len(failed) if rows else 1


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def _triton_version() -> str | None:
    try:
        import triton

        return triton.__version__
    except Exception:
        return None
