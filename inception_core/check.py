"""``inception-core check``: every op, forward and backward, over the networks' shape catalogue, through
every backend that can run on this device, against the torch reference computed in float64.

Op kinds: ``conv`` (conv_bn_act), ``conv_train`` (conv_bn_act_train: output and running statistics),
``pool`` (max / avg pool), and their backward: ``conv_backward``, ``conv_train_backward``,
``pool_backward`` (every input gradient, from the same random output gradient). A forward case writes
into a channel slice of a NaN-poisoned buffer, and the rest of the buffer is checked untouched
(``conv_train`` has no slice write). On a CPU machine the triton backend runs through Triton's
interpreter at reduced spatial sizes (channel counts and kernel geometry kept); on a GPU at the
networks' native sizes. The printout is a summary per op, backend and dtype, with every failing row;
``verbose`` prints every row.
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
OP_KINDS = ("conv", "conv_train", "pool", "conv_backward", "conv_train_backward", "pool_backward")
BACKWARD_GAIN = 1.5  # fp16/bf16 backward rows: within 3x of torch's own error (2x forward), STYLE's policy
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
    """With ``sliced``, ``make(dtype)`` -> (run, reference): ``run(out, offset)`` writes a slice of ``out``,
    the reference is one float64 tensor. Else ``make(dtype)`` -> run: ``run()`` returns (results,
    float64 references), compared element by element."""

    op: str
    layer: str
    shape: str
    make: Callable[[torch.dtype], tuple]
    sliced: bool = True
    backward: bool = False


def _grads(fn, inputs: list[torch.Tensor], grad_y: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """(gradients of ``y = fn(*inputs)`` wrt every input given the output gradient ``grad_y``, y)."""
    leaves = [t.detach().requires_grad_() for t in inputs]
    y = fn(*leaves)
    return torch.autograd.grad(y, leaves, grad_y), y.detach()


def _backward_run(op, op_ref, inputs: list[torch.Tensor], grad_y: torch.Tensor, relu: bool):
    """``run()`` of a backward case: (our gradients of every input, float64 reference gradients).

    With ``relu`` the reference differentiates ``op_ref(..., act="none")`` at our own ReLU mask
    (``grad_y * (y > 0)``): which outputs sit at ReLU's kink depends on the forward's rounding, a
    difference the forward rows check; a flipped mask would otherwise swamp the backward's error.
    ``op(*inputs, act)`` and ``op_ref(*inputs, act)`` take the inputs positionally, act by keyword."""
    def run():
        grad = grad_y.to(inputs[0].dtype)
        ours, y = _grads(lambda *t: op(*t, act="relu" if relu else "none"), inputs, grad)
        g = grad.double() * (y > 0) if relu else grad.double()
        ref, _ = _grads(lambda *t: op_ref(*t, act="none"), [t.double() for t in inputs], g)
        return ours, ref

    return run


def _as_double(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.double()


def _conv_geometry(s, reduce: bool):
    """(input size, output size, residual?) of a conv shape from the catalogue."""
    hw = s.in_hw
    if reduce:
        hw = tuple(reduced_size(hw[i], s.kernel[i], s.stride[i], s.padding[i]) for i in range(2))
    residual = s.bias and s.model.startswith("inception_resnet")  # the residual up-projections
    oh = (hw[0] + 2 * s.padding[0] - s.kernel[0]) // s.stride[0] + 1
    ow = (hw[1] + 2 * s.padding[1] - s.kernel[1]) // s.stride[1] + 1
    return hw, (oh, ow), residual


def _conv_label(s, hw, residual: bool) -> str:
    geom = f"{s.in_channels}->{s.out_channels} {s.kernel[0]}x{s.kernel[1]} s{s.stride[0]} p{s.padding}"
    return f"{geom} @{hw[0]}x{hw[1]}" + (" +res" if residual else "")


def _conv_train_case(s, device, batch: int, reduce: bool, backward: bool) -> Case:
    hw, (oh, ow), residual = _conv_geometry(s, reduce)
    stats = dict(momentum_factor=0.1, eps=1e-3)

    def make(dtype):
        x, w, gamma, beta = conv_inputs(batch, s.in_channels, s.out_channels, s.kernel, hw, dtype, device)
        res = torch.randn(batch, s.out_channels, oh, ow, device=device).to(dtype) if residual else None
        kw = dict(stride=s.stride, padding=s.padding, res_scale=0.17 if residual else 1.0)
        running = (torch.randn(s.out_channels, device=device) * 0.1, torch.rand(s.out_channels, device=device) + 0.5)
        if backward:
            inputs = [x, w, gamma, beta] + ([res] if residual else [])
            grad_y = torch.randn(batch, s.out_channels, oh, ow, device=device)

            def call(op):
                return lambda x_, w_, g_, b_, r_=None, act="relu": op(x_, w_, g_, b_, None, None, **stats, **kw,
                                                                      act=act, residual=r_)

            return _backward_run(call(ops.conv_bn_act_train), call(ops.conv_bn_act_train_ref), inputs, grad_y, True)

        def run():
            mean, var = running[0].clone(), running[1].clone()
            y = ops.conv_bn_act_train(x, w, gamma, beta, mean, var, **stats, **kw, residual=res)
            ref_mean, ref_var = running[0].double(), running[1].double()
            y_ref = ops.conv_bn_act_train_ref(x.double(), w.double(), gamma.double(), beta.double(), ref_mean,
                                              ref_var, **stats, **kw, residual=_as_double(res))
            return (y, mean, var), (y_ref, ref_mean, ref_var)

        return run

    op = "conv_bn_act_train" + (".backward" if backward else "")
    return Case(op, f"{s.model}.{s.layer}", _conv_label(s, hw, residual), make, sliced=False, backward=backward)


def _conv_backward_case(s, device, batch: int, reduce: bool) -> Case:
    hw, (oh, ow), residual = _conv_geometry(s, reduce)

    def make(dtype):
        x, w, scale, shift = conv_inputs(batch, s.in_channels, s.out_channels, s.kernel, hw, dtype, device)
        res = torch.randn(batch, s.out_channels, oh, ow, device=device).to(dtype) if residual else None
        kw = dict(stride=s.stride, padding=s.padding, res_scale=0.17 if residual else 1.0)
        inputs = [x, w, scale, shift] + ([res] if residual else [])
        grad_y = torch.randn(batch, s.out_channels, oh, ow, device=device)

        def call(op):
            return lambda x_, w_, sc_, sh_, r_=None, act="relu": op(x_, w_, sc_, sh_, **kw, act=act, residual=r_)

        return _backward_run(call(ops.conv_bn_act), call(ops.conv_bn_act_ref), inputs, grad_y, True)

    return Case("conv_bn_act.backward", f"{s.model}.{s.layer}", _conv_label(s, hw, residual), make, sliced=False,
                backward=True)


def _conv_case(s, device, batch: int, reduce: bool) -> Case:
    hw, (oh, ow), residual = _conv_geometry(s, reduce)

    def make(dtype):
        x, w, scale, shift = conv_inputs(batch, s.in_channels, s.out_channels, s.kernel, hw, dtype, device)
        res = torch.randn(batch, s.out_channels, oh, ow, device=device).to(dtype) if residual else None
        kw = dict(stride=s.stride, padding=s.padding, act="relu", residual=res, res_scale=0.17 if residual else 1.0)
        ref = ops.conv_bn_act_ref(x.double(), w.double(), scale.double(), shift.double(),
                                  **{**kw, "residual": None if res is None else res.double()})
        return (lambda out, off: ops.conv_bn_act(x, w, scale, shift, **kw, out=out, out_offset=off)), ref

    return Case("conv_bn_act", f"{s.model}.{s.layer}", _conv_label(s, hw, residual), make)


def _pool_case(s, device, batch: int, reduce: bool, backward: bool = False) -> Case | None:
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
        kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=s.ceil_mode)
        if kind == "avg":
            kw["count_include_pad"] = s.count_include_pad
        op, op_ref = (ops.max_pool2d, ops.max_pool2d_ref) if kind == "max" else (ops.avg_pool2d, ops.avg_pool2d_ref)
        ref = op_ref(x.double(), **kw)
        if backward:
            grad_y = torch.randn(ref.shape, device=device)
            return _backward_run(lambda t, act: op(t, **kw), lambda t, act: op_ref(t, **kw), [x], grad_y, False)
        return (lambda out, off: op(x, **kw, out=out, out_offset=off)), ref

    flags = ("ceil " if s.ceil_mode else "") + ("" if kind == "max" or s.count_include_pad else "excl-pad ")
    shape = f"{s.channels}ch {kernel[0]}x{kernel[1]} s{stride[0]} p{padding[0]} {flags}@{hw[0]}x{hw[1]}"
    op = f"{kind}_pool2d" + (".backward" if backward else "")
    return Case(op, f"{s.model}.{s.layer}", shape.replace("  ", " "), make, sliced=not backward, backward=backward)


_CASE_MAKERS = {
    "conv": (CONV_SHAPES, _conv_case),
    "conv_train": (CONV_SHAPES, lambda s, *a: _conv_train_case(s, *a, backward=False)),
    "pool": (POOL_SHAPES, _pool_case),
    "conv_backward": (CONV_SHAPES, _conv_backward_case),
    "conv_train_backward": (CONV_SHAPES, lambda s, *a: _conv_train_case(s, *a, backward=True)),
    "pool_backward": (POOL_SHAPES, lambda s, *a: _pool_case(s, *a, backward=True)),
}


def cases(device, *, models=MODELS, op_kinds=OP_KINDS, batch: int = 2, reduce: bool = True) -> list[Case]:
    """One case per op kind and distinct geometry (and input size) of the selected networks, in
    ``OP_KINDS`` order."""
    found: list[Case] = []
    seen: set[str] = set()
    for kind in OP_KINDS:
        if kind not in op_kinds:
            continue
        shapes, make_case = _CASE_MAKERS[kind]
        for s in shapes:
            if s.model in models:
                c = make_case(s, device, batch, reduce)
                if c is not None and (c.op + c.shape) not in seen:
                    seen.add(c.op + c.shape)
                    found.append(c)
    return found


def _run_sliced(run, ref: torch.Tensor, dtype: torch.dtype) -> tuple[float, str]:
    """Error of a slice write into a NaN-poisoned buffer, and a note when it wrote outside its slice."""
    n, k, oh, ow = ref.shape
    out = torch.full((n, k + 2 * PAD, oh, ow), float("nan"), dtype=dtype, device=ref.device)
    out = out.contiguous(memory_format=torch.channels_last)
    err = rel_err(run(out, PAD), ref)
    if not (torch.isnan(out[:, :PAD]).all() and torch.isnan(out[:, PAD + k:]).all()):
        return float("nan"), "wrote outside its channel slice"
    return err, ""


def _run_tuple(run) -> list[float]:
    """The error of each result against its reference."""
    results, refs = run()
    return [rel_err(y, r) for y, r in zip(results, refs, strict=True)]


def _run_one(case: Case, dtype: torch.dtype, backend_names: list[str], seed: int) -> Iterator[Row]:
    """One row per backend; a row passes when every result of the case does (``passes``, each result
    against the torch backend's error on the same result)."""
    torch.manual_seed(seed)
    made = case.make(dtype)
    errs: dict[str, list[float]] = {}
    gain = BACKWARD_GAIN if case.backward else 1.0
    for name in ["torch", *[b for b in backend_names if b != "torch"]]:
        note = ""
        try:
            with backends.backend(name):
                if case.sliced:
                    err, note = _run_sliced(*made, dtype)
                    errs[name] = [err]
                else:
                    errs[name] = _run_tuple(made)
        except Exception as exc:  # reported as a failing row, the check goes on
            errs[name], note = [float("nan")] * len(errs.get("torch", [0])), f"{type(exc).__name__}: {exc}"[:120]
        if name in backend_names:
            oks = [passes(e, dtype, torch_err=t * gain, interpreted=backends.interpreter_enabled())
                   for e, t in zip(errs[name], errs["torch"], strict=True)]
            if not all(oks) and not note:
                note = "results " + ", ".join(str(i) for i, ok in enumerate(oks) if not ok)
            err = max(errs[name], key=lambda e: float("inf") if e != e else e)
            yield Row(case.op, case.layer, case.shape, name, _dtype_name(dtype), err, all(oks), note)


def _dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)


def run_check(device: torch.device, *, dtypes=("fp32", "fp16", "bf16"), models=MODELS, op_kinds=OP_KINDS,
              batch: int | None = None, reduce: bool | None = None, backend_names: list[str] | None = None,
              verbose: bool = False, json_path: str | None = None, stream=None) -> int:
    """Run the check and print a summary per op, backend and dtype, every failing row, and with
    ``verbose`` every row; returns the number of failing rows, or 1 when no row ran (a check of
    nothing has not passed). Raises ValueError for an unknown dtype, network or op kind, an
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
    header = f"{'op':<26} {'layer':<40} {'shape':<40} {'backend':<7} {'dtype':<5} {'max rel err':>11}  result"
    if verbose:
        print(header, file=stream)
        print("-" * len(header), file=stream)
    rows: list[Row] = []
    start = time.time()
    for i, case in enumerate(todo):
        for dtype in dtypes:
            for row in _run_one(case, DTYPES[dtype], backend_names, seed=i):
                rows.append(row)
                if verbose or not row.ok:
                    if not verbose and len([r for r in rows if not r.ok]) == 1:
                        print(f"failing rows:\n{header}", file=stream)
                    print(f"{row.op:<26} {row.layer[:40]:<40} {row.shape[:40]:<40} {row.backend:<7} {row.dtype:<5} "
                          f"{row.max_rel_err:>11.2e}  {'pass' if row.ok else 'FAIL ' + row.note}", file=stream)
    failed = [r for r in rows if not r.ok]
    _print_summary(rows, backend_names, dtypes, stream)
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed in {time.time() - start:.0f} s", file=stream)
    if not rows:
        print("nothing was checked: no case of the selected networks and ops ran", file=stream)
    if json_path:
        meta = dict(device=_device_name(device), torch=torch.__version__, triton=_triton_version(),
                    interpreted=backends.interpreter_enabled(), reduced=reduce, batch=batch)
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(dict(meta=meta, rows=[asdict(r) for r in rows]), f, indent=1)
    return len(failed) if rows else 1


def _print_summary(rows: list[Row], backend_names: list[str], dtypes, stream) -> None:
    """One line per (op, backend, dtype): rows, failures, the largest error and where it occurred."""
    print(f"{'op':<26} {'backend':<7} {'dtype':<5} {'rows':>5} {'failed':>6} {'max rel err':>11}  at", file=stream)
    for op in dict.fromkeys(r.op for r in rows):
        for name in backend_names:
            for dtype in dtypes:
                sel = [r for r in rows if r.op == op and r.backend == name and r.dtype == dtype]
                if sel:
                    worst = max(sel, key=lambda r: float("inf") if r.max_rel_err != r.max_rel_err else r.max_rel_err)
                    bad = sum(not r.ok for r in sel)
                    print(f"{op:<26} {name:<7} {dtype:<5} {len(sel):>5} {bad:>6} {worst.max_rel_err:>11.2e}  "
                          f"{worst.layer}", file=stream)


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
