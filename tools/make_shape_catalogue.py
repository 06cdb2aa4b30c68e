#!/usr/bin/env python
"""Regenerate ``inception_core/shapes.py``: the conv / pool shape catalogue of the six Inception networks.

Usage (from the repository root)::

    python tools/make_shape_catalogue.py            # writes inception_core/shapes.py and prints a report
    python tools/make_shape_catalogue.py --check    # only verifies that the file on disk is up to date

Each reference network is built with random weights (no pretrained weights are downloaded) and run once
at its native input size, batch 1.  Every call of ``conv2d``, ``max_pool2d``, ``avg_pool2d`` and
``adaptive_avg_pool2d`` is intercepted with a :class:`torch.overrides.TorchFunctionMode`.  That sees both
the ``nn.Conv2d`` / ``nn.MaxPool2d`` / ... modules (whose forward calls the functional op) and the
functional calls made directly inside block forwards (torchvision's Inception3 blocks).  The layer name
of a call is the innermost module on a module stack maintained with global forward pre/post hooks; for a
functional call made inside a non-pool module forward, ``/F.<op>#<i>`` is appended to the module path.

GoogLeNet and Inception-v3 only run their auxiliary heads in training mode, so those two networks are
run a second time in training mode with every BatchNorm / Dropout module kept in eval mode (shapes are
identical, and the BatchNorm of the v3 aux head would refuse a 1x1 batch-1 input in training mode).
The non-aux records of that run are checked to be identical to the eval-mode run.  Aux layers keep their
module path ("aux1.conv.conv", "AuxLogits.conv0.conv"), and are never merged with main-network layers.

Requires: torch, torchvision, timm, pretrainedmodels, facenet-pytorch.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from inception_core.shape_types import MODELS, NATIVE_INPUT, is_aux_layer, pool_out

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "inception_core" / "shapes.py"
REGEN_COMMAND = "python tools/make_shape_catalogue.py"

# functional op names we record, and the positional signature used to bind their arguments
_SIGNATURES = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "max_pool2d_with_indices": (
        "input",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "ceil_mode",
        "return_indices",
    ),
    "avg_pool2d": (
        "input",
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
    "adaptive_avg_pool2d": ("input", "output_size"),
}
_DEFAULTS = {
    "conv2d": {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "max_pool2d": {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False},
    "max_pool2d_with_indices": {
        "stride": None,
        "padding": 0,
        "dilation": 1,
        "ceil_mode": False,
        "return_indices": False,
    },
    "avg_pool2d": {
        "stride": None,
        "padding": 0,
        "ceil_mode": False,
        "count_include_pad": True,
        "divisor_override": None,
    },
    "adaptive_avg_pool2d": {},
}
# module types whose own forward issues the recorded op (the layer name is then just the module path)
_OP_MODULES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]), int(v[0]))
        if len(v) == 2 and all(isinstance(e, int) for e in v):
            return (int(v[0]), int(v[1]))
    raise ValueError(f"cannot normalise {what}={v!r} to an int pair")


# --------------------------------------------------------------------------------------------------------
# recording
# --------------------------------------------------------------------------------------------------------
@dataclass
class Record:
    op: str  # "conv" | "max" | "avg" | "adaptive_avg"
    layer: str
    aux: bool
    geometry: tuple  # the dedup key (without aux flag)
    out_hw: tuple[int, int]
    macs: int = 0


@dataclass
class _Recorder:
    stack: list[tuple[str, nn.Module]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    functional_counter: dict[str, int] = field(default_factory=dict)
    unhandled: set[str] = field(default_factory=set)
    op_modules_run: list[str] = field(default_factory=list)  # conv/pool modules seen by the forward hooks


class _ShapeMode(TorchFunctionMode):
    def __init__(self, rec: _Recorder):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, _types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        out = func(*args, **kwargs)
        if name in _SIGNATURES:
            self._record(name, args, kwargs, out)
        elif ("conv" in name or "pool" in name) and not name.startswith("_"):
            self.rec.unhandled.add(name)
        return out

    def _layer_name(self, op: str) -> str:
        if not self.rec.stack:
            return f"(root)/F.{op}"
        path, mod = self.rec.stack[-1]
        path = path or "(root)"
        if isinstance(mod, _OP_MODULES):
            return path
        # functional call inside a block forward: number them per block
        i = self.rec.functional_counter.get(path, 0)
        self.rec.functional_counter[path] = i + 1
        return f"{path}/F.{op}#{i}"

    def _record(self, name, args, kwargs, out):
        sig = _SIGNATURES[name]
        bound = dict(_DEFAULTS[name])
        bound.update(zip(sig, args, strict=False))
        bound.update(kwargs)
        x = bound["input"]
        assert x.dim() == 4, (name, x.shape)
        in_hw = (int(x.shape[2]), int(x.shape[3]))
        out_t = out[0] if isinstance(out, tuple) else out
        out_hw = (int(out_t.shape[2]), int(out_t.shape[3]))
        layer = self._layer_name(name)
        aux = is_aux_layer(layer)

        if name == "conv2d":
            w = bound["weight"]
            if _pair(bound["dilation"], "dilation") != (1, 1) or bound["groups"] != 1:
                raise NotImplementedError(f"{layer}: dilation/groups not supported: {bound}")
            padding = bound["padding"]
            if isinstance(padding, str):
                raise NotImplementedError(f"{layer}: string padding {padding!r}")
            out_c, in_c, kh, kw = (int(s) for s in w.shape)
            assert in_c == x.shape[1]
            geom = (
                in_c,
                out_c,
                (kh, kw),
                _pair(bound["stride"], "stride"),
                _pair(padding, "padding"),
                in_hw,
                bound["bias"] is not None,
            )
            macs = out_hw[0] * out_hw[1] * out_c * in_c * kh * kw
            self.rec.records.append(Record("conv", layer, aux, geom, out_hw, macs))
            return

        channels = int(x.shape[1])
        if name == "adaptive_avg_pool2d":
            osz = bound["output_size"]
            if isinstance(osz, (tuple, list)) and any(o is None for o in osz):
                osz = tuple(i if o is None else o for o, i in zip(osz, in_hw, strict=True))
            geom = ("adaptive_avg", channels, _pair(osz, "output_size"), (0, 0), (0, 0), False, True, in_hw)
        else:
            kernel = _pair(bound["kernel_size"], "kernel_size")
            stride = bound["stride"]
            if stride is None or (isinstance(stride, (list, tuple)) and not stride):
                stride = kernel  # PyTorch: stride defaults to kernel_size
            stride = _pair(stride, "stride")
            padding = _pair(bound["padding"], "padding")
            if name.startswith("max_pool2d"):
                if _pair(bound["dilation"], "dilation") != (1, 1):
                    raise NotImplementedError(f"{layer}: dilated max pool")
                kind, cip = "max", True
            else:
                if bound["divisor_override"] is not None:
                    raise NotImplementedError(f"{layer}: avg pool divisor_override")
                kind, cip = "avg", bool(bound["count_include_pad"])
            geom = (kind, channels, kernel, stride, padding, bool(bound["ceil_mode"]), cip, in_hw)
        self.rec.records.append(Record(geom[0], layer, aux, geom, out_hw))


def _install_stack_hooks(model: nn.Module, rec: _Recorder) -> list:
    handles = []
    for path, mod in model.named_modules():

        def pre(m, inputs, _path=path):
            rec.stack.append((_path, m))

        def post(m, inputs, output, _path=path):
            top_path, top_mod = rec.stack.pop()
            assert top_mod is m and top_path == _path, (top_path, _path)
            if isinstance(m, _OP_MODULES):
                rec.op_modules_run.append(_path)

        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
    return handles


def trace(model: nn.Module, hw: int, *, train_aux: bool = False) -> list[Record]:
    """Run ``model`` on a (1, 3, hw, hw) input and return the conv/pool records in execution order."""
    rec = _Recorder()
    if train_aux:
        model.train()
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout)):
                m.eval()
    else:
        model.eval()
    handles = _install_stack_hooks(model, rec)
    x = torch.randn(1, 3, hw, hw, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad(), _ShapeMode(rec):
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.eval()
    assert not rec.stack, rec.stack
    if rec.unhandled:
        raise RuntimeError(f"unrecorded conv/pool-like ops were called: {sorted(rec.unhandled)}")
    names = [r.layer for r in rec.records]
    # every nn.Conv2d / pool module that ran must have been seen by the TorchFunctionMode
    recorded = set(names)
    missed = [p for p in rec.op_modules_run if p not in recorded]
    if missed:
        raise RuntimeError(f"modules not intercepted by the TorchFunctionMode: {missed[:5]}")
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RuntimeError(f"layers called more than once: {sorted(dup)}")
    return rec.records


# --------------------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------------------
def _googlenet() -> nn.Module:
    import torchvision

    return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)


def _bn_inception() -> nn.Module:
    import pretrainedmodels

    return pretrainedmodels.bninception(num_classes=1000, pretrained=None)


def _inception_v3() -> nn.Module:
    import torchvision

    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)


def _inception_v4() -> nn.Module:
    import timm

    return timm.create_model("inception_v4", pretrained=False)


def _inception_resnet_v1() -> nn.Module:
    import facenet_pytorch

    return facenet_pytorch.InceptionResnetV1(pretrained=None, classify=False)


def _inception_resnet_v2() -> nn.Module:
    import timm

    return timm.create_model("inception_resnet_v2", pretrained=False)


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "googlenet": _googlenet,
    "bn_inception": _bn_inception,
    "inception_v3": _inception_v3,
    "inception_v4": _inception_v4,
    "inception_resnet_v1": _inception_resnet_v1,
    "inception_resnet_v2": _inception_resnet_v2,
}
HAS_AUX = {"googlenet", "inception_v3"}


def collect(model_name: str) -> list[Record]:
    torch.manual_seed(0)
    model = BUILDERS[model_name]()
    hw = NATIVE_INPUT[model_name]
    records = trace(model, hw)
    if any(r.aux for r in records):
        raise RuntimeError(f"{model_name}: aux layers ran in eval mode")
    if model_name in HAS_AUX:
        with_aux = trace(model, hw, train_aux=True)
        main = [(r.layer, r.geometry) for r in with_aux if not r.aux]
        if main != [(r.layer, r.geometry) for r in records]:
            raise RuntimeError(f"{model_name}: train-mode run differs from eval-mode run outside aux heads")
        if not any(r.aux for r in with_aux):
            raise RuntimeError(f"{model_name}: no aux layers recorded in train mode")
        records = with_aux
    return records


# --------------------------------------------------------------------------------------------------------
# dedup + code generation
# --------------------------------------------------------------------------------------------------------
def _expected_out_hw(r: Record) -> tuple[int, int]:
    g = r.geometry
    if r.op == "conv":
        _, _, k, s, p, hw, _ = g
        return tuple((hw[i] + 2 * p[i] - k[i]) // s[i] + 1 for i in range(2))
    kind, _, k, s, p, ceil_mode, _, hw = g
    if kind == "adaptive_avg":
        return k
    return tuple(pool_out(hw[i], k[i], s[i], p[i], ceil_mode) for i in range(2))


def dedup(records: list[Record]) -> list[tuple[Record, int]]:
    """Merge records with identical geometry (aux and main layers kept apart), in first-seen order."""
    first: dict[tuple, Record] = {}
    counts: dict[tuple, int] = {}
    for r in records:
        key = (r.op == "conv", r.aux, r.geometry)
        if key not in first:
            first[key] = r
            counts[key] = 0
        counts[key] += 1
    return [(first[k], counts[k]) for k in first]


HEADER = '''\
# GENERATED FILE -- DO NOT EDIT BY HAND.
# Regenerate with:  {cmd}
# (needs torch, torchvision, timm, pretrainedmodels, facenet-pytorch; random weights, nothing is downloaded)
"""Shape catalogue of every convolution and pooling op run by the six Inception-family networks.

Each network is run once, batch 1, at its native input resolution (``NATIVE_INPUT``) and every call of
``conv2d`` / ``max_pool2d`` / ``avg_pool2d`` / ``adaptive_avg_pool2d`` is recorded with its real arguments.
Entries are deduplicated per model on the geometry (every field except ``layer`` and ``count``), in the
order the network first runs them; ``layer`` is the module path of the first layer with that geometry
(``<block>/F.<op>#<i>`` for functional pools called inside a block's forward) and ``count`` is how many
layers of that model share it.

Reference implementations: googlenet / inception_v3 = torchvision, bn_inception = pretrainedmodels,
inception_v4 / inception_resnet_v2 = timm, inception_resnet_v1 = facenet-pytorch (160x160 faces).

Auxiliary classifier heads (GoogLeNet ``aux1``/``aux2``, Inception-v3 ``AuxLogits``; they only run
in training mode) are included; their entries are never merged with main-network entries, so the
``is_aux`` property (first layer-path component in ``AUX_MODULES``) separates them.

Pools: ``kind`` is "max", "avg" or "adaptive_avg".  For "adaptive_avg" the output size is stored in
``kernel`` and ``stride``/``padding`` are (0, 0) (not applicable).  ``count_include_pad`` is only meaningful
for "avg" pools; it is True for "max" and "adaptive_avg" entries by convention.
"""

from __future__ import annotations

from inception_core.shape_types import (
    AUX_MODULES,
    MODELS,
    NATIVE_INPUT,
    ConvGeometry,
    ConvShape,
    PoolGeometry,
    PoolShape,
    conv_geometries,
    pool_geometries,
)
from inception_core.shape_types import conv_rows as _convs
from inception_core.shape_types import pool_rows as _pools

__all__ = [
    "AUX_MODULES",
    "CONV_SHAPES",
    "MODELS",
    "NATIVE_INPUT",
    "POOL_SHAPES",
    "ConvGeometry",
    "ConvShape",
    "PoolGeometry",
    "PoolShape",
    "conv_geometries",
    "pool_geometries",
]

'''


MAX_LINE = 110


def _q(text: str) -> str:
    assert '"' not in text and "\\" not in text, text
    return f'"{text}"'


def _row(fields: list[str], indent: str = "        ") -> list[str]:
    """One catalogue row per line; wrapped after the layer name only if it would exceed MAX_LINE."""
    line = f"{indent}({', '.join(fields)}),"
    if len(line) <= MAX_LINE:
        return [line]
    head, tail = f"{indent}({fields[0]},", f"{indent} {', '.join(fields[1:])}),"
    assert len(head) <= MAX_LINE and len(tail) <= MAX_LINE, line
    return [head, tail]


def render(all_records: dict[str, list[Record]]) -> str:
    out = [
        HEADER.format(cmd=REGEN_COMMAND)
    ]
    out.append("# fmt: off")
    out.append("CONV_SHAPES: tuple[ConvShape, ...] = (")
    for m in MODELS:
        entries = dedup([r for r in all_records[m] if r.op == "conv"])
        out.append(f"    # {m} @ {NATIVE_INPUT[m]}: {len(entries)} geometries")
        out.append("    # (layer, count, in_channels, out_channels, kernel, stride, padding, in_hw, bias)")
        out.append(f"    *_convs({_q(m)}, (")
        for r, n in entries:
            ic, oc, k, s, p, hw, b = r.geometry
            out += _row([_q(r.layer)] + [str(v) for v in (n, ic, oc, k, s, p, hw, b)])
        out.append("    )),")
    out.append(")")
    out.append("")
    out.append("POOL_SHAPES: tuple[PoolShape, ...] = (")
    for m in MODELS:
        entries = dedup([r for r in all_records[m] if r.op != "conv"])
        out.append(f"    # {m} @ {NATIVE_INPUT[m]}: {len(entries)} geometries")
        out.append("    # (layer, count, kind, channels, kernel, stride, padding, ceil_mode,")
        out.append("    #  count_include_pad, in_hw)")
        out.append(f"    *_pools({_q(m)}, (")
        for r, n in entries:
            kind, ch, k, s, p, cm, cip, hw = r.geometry
            out += _row([_q(r.layer), str(n), _q(kind)] + [str(v) for v in (ch, k, s, p, cm, cip, hw)])
        out.append("    )),")
    out.append(")")
    out.append("# fmt: on")
    out.append("")
    text = "\n".join(out)
    too_long = [ln for ln in text.splitlines() if len(ln) > MAX_LINE]
    assert not too_long, too_long
    return text


# --------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------
def report(all_records: dict[str, list[Record]]) -> None:
    print(
        f"{'model':22s} {'convs':>5s} {'+aux':>5s} {'geoms':>5s} {'pools':>5s} {'+aux':>5s} "
        f"{'geoms':>5s} {'conv GMACs (no aux)':>20s} {'aux GMACs':>10s}"
    )
    all_geoms: dict[tuple, None] = {}
    kernels: dict[tuple, None] = {}
    paddings: dict[tuple, None] = {}
    for m in MODELS:
        recs = all_records[m]
        convs = [r for r in recs if r.op == "conv"]
        pools = [r for r in recs if r.op != "conv"]
        main_macs = sum(r.macs for r in convs if not r.aux)
        aux_macs = sum(r.macs for r in convs if r.aux)
        for r in convs:
            ic, oc, k, s, p, _hw, _b = r.geometry
            all_geoms.setdefault((ic, oc, k, s, p))
            kernels.setdefault(k)
            paddings.setdefault((k, p))
        print(
            f"{m:22s} {sum(not r.aux for r in convs):5d} {sum(r.aux for r in convs):5d} "
            f"{len(dedup(convs)):5d} {sum(not r.aux for r in pools):5d} {sum(r.aux for r in pools):5d} "
            f"{len(dedup(pools)):5d} {main_macs / 1e9:20.4f} {aux_macs / 1e9:10.4f}"
        )
    print(f"distinct conv geometries (in, out, k, s, p) over all models: {len(all_geoms)}")
    print("kernels:", ", ".join(f"{k[0]}x{k[1]}" for k in sorted(kernels)))
    print("kernel -> padding:", ", ".join(f"{k[0]}x{k[1]}:{p}" for k, p in sorted(paddings)))
    for m in MODELS:
        sem: dict[tuple, int] = {}
        for r in all_records[m]:
            if r.op != "conv":
                key = (r.op, r.geometry[5], r.geometry[6], r.aux)
                sem[key] = sem.get(key, 0) + 1
        desc = "; ".join(
            f"{kind}{' (aux)' if aux else ''} x{n}: ceil_mode={cm} count_include_pad={cip}"
            for (kind, cm, cip, aux), n in sem.items()
        )
        print(f"  pools {m}: {desc}")


def verify_rendered(text: str, all_records: dict[str, list[Record]]) -> None:
    """Import the generated source and check it against the raw records (out_hw, counts, MACs)."""
    mod = types.ModuleType("_generated_shapes")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile(text, str(DEFAULT_OUTPUT), "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    assert tuple(mod.MODELS) == MODELS and mod.NATIVE_INPUT == NATIVE_INPUT
    entries: dict[tuple, object] = {}
    for c in mod.CONV_SHAPES:
        geom = (c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, c.in_hw, c.bias)
        entries[(c.model, True, c.is_aux, geom)] = c
    for q in mod.POOL_SHAPES:
        geom = (q.kind, q.channels, q.kernel, q.stride, q.padding, q.ceil_mode, q.count_include_pad, q.in_hw)
        entries[(q.model, False, q.is_aux, geom)] = q
    assert len(entries) == len(mod.CONV_SHAPES) + len(mod.POOL_SHAPES), "duplicate catalogue entries"
    seen: dict[tuple, int] = {}
    for m, recs in all_records.items():
        for r in recs:
            key = (m, r.op == "conv", r.aux, r.geometry)
            e = entries[key]
            assert e.out_hw == r.out_hw, (m, r.layer, e.out_hw, r.out_hw)
            if r.op == "conv":
                assert e.macs == r.macs, (m, r.layer)
            seen[key] = seen.get(key, 0) + 1
    assert seen.keys() == entries.keys()
    for key, n in seen.items():
        assert entries[key].count == n, (key, entries[key].count, n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--check", action="store_true", help="fail if the output file is not up to date")
    ap.add_argument("--quiet", action="store_true", help="do not print the report")
    args = ap.parse_args(argv)

    all_records: dict[str, list[Record]] = {}
    for m in MODELS:
        recs = collect(m)
        for r in recs:
            exp = _expected_out_hw(r)
            if exp != r.out_hw:
                raise RuntimeError(f"{m} {r.layer}: computed out_hw {exp} != actual {r.out_hw}")
        all_records[m] = recs
    text = render(all_records)
    verify_rendered(text, all_records)
    if not args.quiet:
        report(all_records)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run: {REGEN_COMMAND}", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
