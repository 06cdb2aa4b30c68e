"""The catalogue of compilation units CI compiles for sm_80 / sm_90 (``inception_core.aot`` compiles them).

Every GPU config of every kernel with a config list (``kernels/configs.py``) x fp32 / fp16 / bf16 x the
geometry classes it can be chosen for, plus the fixed-tile kernels. A kernel file contributes a
``*_variants(full)`` generator here, listed in ``VARIANT_SOURCES``; ``all_variants()`` gathers them.
``full=False`` is the CI set (each config on fewer geometry classes and dtypes), ``full=True`` every
combination (``tools/resource_report.py --full``).

Every unit comes from a launcher itself: the launcher runs under ``launch.recording(gpu=True)`` (with
each config of a config list given explicitly) and each recorded launch becomes a unit
(``aot.launch_signature``), so the signatures are the ones the launchers really pass. The inference
conv and pooling forward launchers run on unallocated ``meta`` tensors, in this process (that is how
their int64 units get a >= 2**31-element input); the training GEMM and fixed-tile units are recorded
on small real tensors, the fixed-tile ones through the training ops, which need the triton backend (so
both run, on a CPU machine without the interpreter, in a child process under it).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from inception_core.aot import KernelVariant, as_jit_function, launch_signature

__all__ = ["CONV_GEOMETRIES", "VARIANT_SOURCES", "all_variants", "config_label", "conv_bn_act_variants",
           "fixed_tile_variants", "pool2d_variants", "training_variants"]

# Representative problem used to prune configs per geometry class: a 17x17x768 stage at batch 32, big
# enough that only shared memory and warp count (not tile-vs-problem size) decide (conv_fwd_fits).
_PRUNE_M, _PRUNE_C, _PRUNE_K = 32 * 17 * 17, 768, 768

_DTYPES = {"fp32": 4, "fp16": 2, "bf16": 2}


def config_label(config) -> str:
    """A config as "<BLOCK_* joined by x>-w<warps>s<stages>", e.g. "128x64x32-w4s4"."""
    kw = config.kwargs
    tile = "x".join(str(kw[k]) for k in kw if k.startswith("BLOCK_"))
    return f"{tile}-w{config.num_warps}s{config.num_stages}"


# kernel geometry class -> (R, S, (STRIDE_H, STRIDE_W), (PAD_H, PAD_W))
CONV_GEOMETRIES = {
    "1x1": (1, 1, (1, 1), (0, 0)),
    "3x3s2": (3, 3, (2, 2), (0, 0)),   # stride-2 'valid' reductions
    "1x7": (1, 7, (1, 1), (0, 3)),     # factorized 7x7, 17x17 stages
    "7x1": (7, 1, (1, 1), (3, 0)),
}
_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# A problem whose x has >= 2**31 elements at batch 1 (USE_INT64; N is then the constant Triton specializes)
_INT64_BATCH, _INT64_CHANNELS, _INT64_SIZE = 1, 64, 5800


def _meta_tensor(dtype: str, shape: tuple[int, ...], channels_last: bool = True):
    """An unallocated (``meta``) tensor of this dtype and shape: a 4-d one channels_last or contiguous
    (NCHW / KCRS)."""
    import torch

    t = torch.empty(shape, dtype=getattr(torch, _TORCH_DTYPES[dtype]), device="meta")
    return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t


def _recorded_launch(kernel: str, launcher, *args, tf32: bool = False, **kwargs):
    """The launch ``launcher(*args, **kwargs)`` makes of ``kernel``, recorded for a GPU (nothing runs),
    with cuDNN's TF32 flag, which the conv launchers read, set to ``tf32``."""
    import torch

    from inception_core.launch import recording

    allow_tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        with recording(gpu=True, tables=False) as records:
            launcher(*args, **kwargs)
    finally:
        torch.backends.cudnn.allow_tf32 = allow_tf32
    return next(r for r in records if r.kernel == kernel)


def _conv_unit(config, dtype: str, geometry: str, *, residual: bool, precision: str, int64: bool,
               layout: str, fits: bool) -> dict[str, Any]:
    """The unit ``launch_conv_bn_act_triton`` launches for these choices (folded BN, ReLU), recorded on
    unallocated tensors.

    layout "nhwc": channels_last activations and weight, 32 channels in and out (multiples of 16, as every
    Inception layer but the RGB stem), 17x17 at batch 2; with ``int64`` 64 channels, 5800x5800 at batch 1.
    layout "nchw": the stem as torch hands it over: contiguous NCHW x and KCRS weight with C = 3, 35x35;
    y is channels_last as the op allocates it.
    """
    from inception_core.ops.conv_bn_act import launch_conv_bn_act_triton

    r, s, stride, pad = CONV_GEOMETRIES[geometry]
    n, c, size = (_INT64_BATCH, _INT64_CHANNELS, _INT64_SIZE) if int64 else (2, 32, 17)
    k = c
    if layout == "nchw":
        c, size = 3, 35
    oh, ow = ((size + 2 * pad[i] - (r, s)[i]) // stride[i] + 1 for i in range(2))
    x = _meta_tensor(dtype, (n, c, size, size), channels_last=layout == "nhwc")
    w = _meta_tensor(dtype, (k, c, r, s), channels_last=layout == "nhwc")
    y = _meta_tensor(dtype, (n, k, oh, ow))
    vec = _meta_tensor("fp32", (k,))
    rec = _recorded_launch("conv_bn_act_fwd", launch_conv_bn_act_triton, x, w, vec, vec,
                           _meta_tensor(dtype, y.shape) if residual else None, stride, pad, "relu", 1.0, y,
                           config=config, tf32=precision == "tf32")
    cfg = config_label(config)
    parts = [cfg, dtype, geometry + ("+res" if residual else "")]
    if dtype == "fp32" and precision != "tf32":
        parts.append(precision)
    if int64:
        parts.append("int64")
    if layout != "nhwc":
        parts.append(layout)
    return _unit(rec, kernel="conv_bn_act", label="conv_bn_act/" + "/".join(parts),
                 uses_dot=precision != "ieee" or dtype != "fp32",
                 tags=dict(config=cfg, dtype=dtype, geometry=geometry, residual=residual, precision=precision,
                           int64=int64, layout=layout, fits=fits))


def conv_bn_act_variants(full: bool = True, include_rejected: bool = False) -> Iterator[KernelVariant]:
    """Compilation units of ``_conv_bn_act_fwd_kernel`` over its GPU autotune configs, from the
    launcher's recorded launches (``_conv_unit``).

    Every config of ``GPU_CONFIGS["conv_bn_act_fwd"]`` (even under the interpreter) x fp32 / fp16 / bf16 x
    the geometry classes it can be chosen for (``conv_fwd_fits``: 8-warp configs only for 1x1, shared-memory budget),
    with ReLU, folded BN, and the launcher's precision (fp32: "tf32", fp16 / bf16: "ieee", which the
    dot ignores for 16-bit operands). Extras per dtype: one ``USE_INT64`` unit and one NCHW / unaligned
    (stem-like) unit, and for fp32 two "ieee" units.

    Args:
        full: every geometry class with and without residual. False gives the CI set: each config on
            1x1 with residual (without, for a config the residual rule of ``conv_fwd_fits`` rejects) and on
            one spatial class without (cycling 3x3s2, 1x7, 7x1), plus the extras.
        include_rejected: also yield (tags["fits"] False) the units conv_fwd_fits prunes, to see what they
            would compile to.
    """
    from inception_core import heuristics
    from inception_core.kernels import configs

    def fits(config, geometry, elem_size, residual=False):
        r, s = CONV_GEOMETRIES[geometry][:2]
        return configs.conv_fwd_fits(config, M=_PRUNE_M, C=_PRUNE_C, K=_PRUNE_K, R=r, S=s, elem_size=elem_size,
                                     residual=residual)

    spatial = [g for g in CONV_GEOMETRIES if g != "1x1"]
    units = []
    for dtype, elem_size in _DTYPES.items():
        precision = "tf32" if dtype == "fp32" else "ieee"
        for ci, config in enumerate(configs.GPU_CONFIGS["conv_bn_act_fwd"]):
            if full:
                pairs = [(g, res) for g in CONV_GEOMETRIES for res in (False, True)]
            else:
                pairs = [("1x1", fits(config, "1x1", elem_size, True)), (spatial[ci % len(spatial)], False)]
            for geometry, residual in pairs:
                ok = fits(config, geometry, elem_size, residual)
                if ok or include_rejected:
                    units.append(_conv_unit(config, dtype, geometry, residual=residual, precision=precision,
                                            int64=False, layout="nhwc", fits=ok))
        # The extras use a config every geometry may pick, preferring a 64-channel-wide tile.
        usable = [c for c in configs.GPU_CONFIGS["conv_bn_act_fwd"] if fits(c, "3x3s2", elem_size, True)]
        extra = next((c for c in usable if c.kwargs["BLOCK_N"] == 64), usable[0])
        units.append(_conv_unit(extra, dtype, "3x3s2", residual=True, precision=precision, int64=True,
                                layout="nhwc", fits=True))
        # the RGB stem (C = 3): no config's channel block fits, so the launch takes what the heuristic does
        stem = heuristics.conv_fwd(configs.GPU_CONFIGS["conv_bn_act_fwd"], N=32, C=3, K=32, OH=149, OW=149, R=3, S=3,
                                   elem_size=elem_size, stats=False)
        units.append(_conv_unit(stem, dtype, "3x3s2", residual=False, precision=precision, int64=False,
                                layout="nchw", fits=True))
        if dtype == "fp32":
            for geometry in ("1x1", "3x3s2"):
                units.append(_conv_unit(extra, dtype, geometry, residual=False, precision="ieee", int64=False,
                                        layout="nhwc", fits=True))
    yield from _variants(units)


# name -> (kernel size, stride, padding, max pool?, count_include_pad)
_POOLS = {"max3x3s2": (3, 2, 0, True, False), "avg3x3p1": (3, 1, 1, False, True),
          "avg3x3p1-excl": (3, 1, 1, False, False)}


def _pool_unit(config, dtype: str, name: str, *, int64: bool) -> dict[str, Any]:
    """The unit ``launch_pool2d_triton`` launches for this pool, recorded on unallocated channels_last
    tensors: 32 channels, 17x17 at batch 2, or with ``int64`` 64 channels, 5800x5800 at batch 1."""
    from inception_core.ops.pool2d import launch_pool2d_triton

    k, stride, pad, is_max, include_pad = _POOLS[name]
    n, c, size = (_INT64_BATCH, _INT64_CHANNELS, _INT64_SIZE) if int64 else (2, 32, 17)
    out = (size + 2 * pad - k) // stride + 1
    rec = _recorded_launch("pool2d_fwd", launch_pool2d_triton, _meta_tensor(dtype, (n, c, size, size)), (k, k),
                           (stride, stride), (pad, pad), is_max, include_pad, _meta_tensor(dtype, (n, c, out, out)),
                           config=config)
    cfg = config_label(config)
    return _unit(rec, kernel="pool2d", label=f"pool2d/{cfg}/{dtype}/{name}" + ("/int64" if int64 else ""),
                 uses_dot=False, tags=dict(config=cfg, dtype=dtype, geometry=name, int64=int64, fits=True))


def pool2d_variants(full: bool = True) -> Iterator[KernelVariant]:
    """Compilation units of ``_pool2d_fwd_kernel`` (kernels/pool2d.py), from the launcher's recorded
    launches (``_pool_unit``).

    Every config of ``GPU_CONFIGS["pool2d_fwd"]`` x fp32 / fp16 / bf16 x {3x3 stride-2 max pool (valid), 3x3
    stride-1 pad-1 average pool counting the padding (torchvision's Inception)}. ``full`` adds the average
    pool without counting the padding and, for the first config, an int64 unit of each pool and dtype;
    without it each config gets one of the two pools (alternating) and the first config's bf16 max pool
    one int64 unit.
    """
    from inception_core.kernels import configs

    names = list(_POOLS) if full else list(_POOLS)[:2]
    units = []
    for dtype in _DTYPES:
        for ci, config in enumerate(configs.GPU_CONFIGS["pool2d_fwd"]):
            for name in names if full else [names[ci % 2]]:
                int64s = (False, True) if ci == 0 and (full or (dtype, name) == ("bf16", "max3x3s2")) else (False,)
                units += [_pool_unit(config, dtype, name, int64=int64) for int64 in int64s]
    yield from _variants(units)


def _unit(rec, *, kernel: str, label: str, tags: dict[str, Any], uses_dot: bool) -> dict[str, Any]:
    """A recorded launch as plain data (what a child process can hand back): the kernel's module and
    qualname, ``aot.launch_signature`` of its arguments, its launch options, label and tags."""
    signature, constexprs, aligned = launch_signature(rec.fn, rec.args, rec.constexprs)
    fn = as_jit_function(rec.fn).fn
    return dict(kernel=kernel, label=label, tags=tags, uses_dot=uses_dot, module=fn.__module__,
                qualname=fn.__qualname__, signature=signature, constexprs=constexprs, aligned=aligned,
                num_warps=rec.num_warps, num_stages=rec.num_stages if rec.num_stages is not None else 1)


def _training_units(full: bool) -> list[dict[str, Any]]:
    """Recorded units of the training GEMM kernels (see ``training_variants``)."""
    import torch

    from inception_core.kernels import configs
    from inception_core.launch import recording
    from inception_core.ops._conv_grad import launch_conv_grads_triton
    from inception_core.ops.conv_bn_act_train import launch_conv_bn_act_train_triton

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cl = torch.channels_last
    dtypes = list(_DTYPES)

    def tensors(dtype, geometry):
        r, s, stride, pad = CONV_GEOMETRIES[geometry]
        t = getattr(torch, _TORCH_DTYPES[dtype])
        x = torch.randn(2, 32, 17, 17, dtype=t, device=dev).contiguous(memory_format=cl)
        w = torch.randn(32, 32, r, s, dtype=t, device=dev).contiguous(memory_format=cl)
        oh, ow = ((17 + 2 * pad[i] - (r, s)[i]) // stride[i] + 1 for i in range(2))
        gc = torch.randn(2, 32, oh, ow, dtype=t, device=dev).contiguous(memory_format=cl)
        return x, w, gc, stride, pad

    def recorded(kernel, launcher, *args, **kwargs):
        with recording(gpu=True, tables=False) as records:
            launcher(*args, **kwargs)
        return next(r for r in records if r.kernel == kernel)

    units = []
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True  # fp32 convs run as TF32, torch's default
    try:
        # conv forward + STATS: a 1x1 and a spatial unit per dtype, on a config every geometry may pick
        for dtype, elem_size in _DTYPES.items():
            precision = "tf32" if dtype == "fp32" else "ieee"
            usable = [c for c in configs.GPU_CONFIGS["conv_bn_act_fwd"]
                      if configs.conv_fwd_fits(c, M=_PRUNE_M, C=_PRUNE_C, K=_PRUNE_K, R=3, S=3, elem_size=elem_size,
                                               stats=True)]
            for geometry, config in (("1x1", usable[0]), ("3x3s2", usable[-1])):
                x, w, _, stride, pad = tensors(dtype, geometry)
                vec = torch.ones(32, device=dev)
                rec = recorded("conv_bn_act_fwd", launch_conv_bn_act_train_triton, x, w, vec, vec, vec, vec, None,
                               stride, pad, "relu", 1.0, 0.1, 1e-5, config=config)
                cfg = config_label(config)
                tags = dict(config=cfg, dtype=dtype, geometry=geometry, residual=False, precision=precision,
                            int64=False, layout="nhwc", fits=True)
                units.append(_unit(rec, kernel="conv_bn_act_stats", label=f"conv_bn_act_stats/{cfg}/{dtype}/{geometry}",
                                   uses_dot=True, tags=tags))
        # dgrad and wgrad
        for kernel in ("conv_bwd_dx", "conv_bwd_dw"):
            for ci, config in enumerate(configs.GPU_CONFIGS[kernel]):
                pairs = [(d, g) for d in dtypes for g in CONV_GEOMETRIES] if full else \
                    [(dtypes[ci % 3], list(CONV_GEOMETRIES)[ci % len(CONV_GEOMETRIES)])]
                for dtype, geometry in pairs:
                    x, w, gc, stride, pad = tensors(dtype, geometry)
                    dx = kernel == "conv_bwd_dx"
                    rec = recorded(kernel, launch_conv_grads_triton, gc, x, w, stride, pad, dx, not dx,
                                   dx_config=config if dx else None, dw_config=None if dx else config)
                    cfg = config_label(config)
                    units.append(_unit(rec, kernel=kernel, label=f"{kernel}/{cfg}/{dtype}/{geometry}", uses_dot=True,
                                       tags=dict(config=cfg, dtype=dtype, geometry=geometry, fits=True)))
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    return units


def _units_anywhere(producer: str, *args) -> list[dict[str, Any]]:
    """``producer(*args)`` (a unit-list function of this module) here when the triton backend can run
    here (a GPU, or the interpreter), else in a child process under the interpreter (a CPU machine
    compiling for a GPU), whose units come back as JSON."""
    import torch

    from inception_core.kernels import INTERPRETED

    if INTERPRETED or torch.cuda.is_available():
        return globals()[producer](*args)
    code = (f"import json, sys; from inception_core.aot_variants import {producer}; "
            f"print(json.dumps({producer}(*json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))],
                          env={**os.environ, "TRITON_INTERPRET": "1"}, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"recording the launches of {producer} under the interpreter failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _variants(units: list[dict[str, Any]]) -> Iterator[KernelVariant]:
    for u in units:
        fn = importlib.import_module(u["module"])
        for part in u["qualname"].split("."):
            fn = getattr(fn, part)
        yield KernelVariant(kernel=u["kernel"], label=u["label"], fn=fn, signature=u["signature"],
                            constexprs=u["constexprs"], num_warps=u["num_warps"], num_stages=u["num_stages"],
                            aligned=tuple(u["aligned"]), uses_dot=u["uses_dot"], tags=u["tags"])


def training_variants(full: bool = True) -> Iterator[KernelVariant]:
    """Compilation units of the training GEMM kernels, from their launchers' recorded launches with each
    config given explicitly: the conv forward with its STATS epilogue (BN batch statistics; a 1x1 and a
    3x3s2 unit per dtype) and dgrad / wgrad (kernels/conv_bwd.py, every GPU config); channels_last
    activations and weights, 32 channels, 17x17 (the fixed-tile training kernels:
    ``fixed_tile_variants``). ``full`` gives every dgrad / wgrad config every dtype and geometry class;
    the CI set cycles dtype and geometry over the configs."""
    yield from _variants(_units_anywhere("_training_units", full))


# launch-path name of a fixed-tile kernel -> (variant kernel family, unit name)
_FIXED_UNITS = {"bn_stats_finalize": ("batch_norm", "stats_finalize"), "affine_act": ("batch_norm", "affine_act"),
                "bn_bwd_reduce": ("batch_norm", "bwd_reduce"), "bn_bwd_finalize": ("batch_norm", "bwd_finalize"),
                "bn_bwd_apply": ("batch_norm", "bwd_apply"), "sum_splits": ("conv_bwd_sum", "splits"),
                "max_pool2d_argmax": ("pool2d_bwd", "argmax"), "pool2d_bwd": ("pool2d_bwd", None)}


def _record_fixed_tile_launches(dtype: str) -> list:
    """The launches of a training conv (BN with affine and running stats, a residual that needs its
    gradient, ReLU), forward and backward, with the weight as a model has it by default (KCRS) and
    converted to channels_last (``--channels-last``), then a 3x3 stride-2 max pool and a 3x3 stride-1
    pad-1 average pool (counting the padding) forward and backward: channels_last activations, 32
    channels, 47x47 (wgrad splits in two), recorded for a GPU without running a kernel."""
    import torch

    import inception_core as ic
    from inception_core.launch import recording

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    t = getattr(torch, _TORCH_DTYPES[dtype])
    cl = torch.channels_last
    x = torch.randn(2, 32, 47, 47, dtype=t, device=dev).contiguous(memory_format=cl).requires_grad_()
    res = torch.randn(2, 32, 47, 47, dtype=t, device=dev).contiguous(memory_format=cl).requires_grad_()
    w = torch.randn(32, 32, 3, 3, dtype=t, device=dev)
    gamma = torch.ones(32, device=dev, requires_grad=True)
    beta = torch.zeros(32, device=dev, requires_grad=True)
    with ic.backend("triton"), recording(gpu=True, tables=False) as records:
        for weight in (w, w.contiguous(memory_format=cl)):
            y = ic.ops.conv_bn_act_train(x, weight.requires_grad_(), gamma, beta, torch.zeros(32, device=dev),
                                         torch.ones(32, device=dev), momentum_factor=0.1, eps=1e-5, padding=1,
                                         residual=res)
            y.backward(torch.ones_like(y))
        for pool in (lambda v: ic.ops.max_pool2d(v, 3, 2), lambda v: ic.ops.avg_pool2d(v, 3, 1, 1)):
            v = x.detach().requires_grad_()
            out = pool(v)
            out.backward(torch.ones_like(out))
    return records


def _fixed_tile_units(dtypes: list[str]) -> list[dict[str, Any]]:
    """The distinct recorded fixed-tile launches of ``_record_fixed_tile_launches`` over ``dtypes``."""
    from inception_core.launch import TensorSpec
    from inception_core.plan import distinct_variants

    units, seen = [], set()
    for dtype in dtypes:
        torch_dtype = "torch." + _TORCH_DTYPES[dtype]
        for rec in distinct_variants(r for r in _record_fixed_tile_launches(dtype) if r.kernel in _FIXED_UNITS):
            family, name = _FIXED_UNITS[rec.kernel]
            tensors = {str(a.dtype) for a in rec.args if isinstance(a, TensorSpec)}
            unit_dtype = dtype if torch_dtype in tensors else "fp32"
            u = _unit(rec, kernel=family, label="", tags={}, uses_dot=False)
            key = (rec.kernel, tuple(sorted(u["signature"].items())), tuple(sorted(u["constexprs"].items(), key=str)))
            if key in seen:  # the fp32-only finalize kernels come out the same for every dtype
                continue
            seen.add(key)
            if name is None:
                name = "max3x3s2" if u["constexprs"]["IS_MAX"] else "avg3x3p1"
            if rec.kernel == "sum_splits" and u["constexprs"].get("stride_dws") != 1:
                name = "splits_cl_weight"  # the weight gradient of a channels_last weight
            u.update(label=f"{family}/fixed/{unit_dtype}/{name}",
                     tags=dict(config="fixed", dtype=unit_dtype, geometry=name, fits=True, launch_kernel=rec.kernel))
            units.append(u)
    return units


def fixed_tile_variants(full: bool = True) -> Iterator[KernelVariant]:
    """Compilation units of the fixed-tile kernels (BatchNorm statistics and backward, pooling backward,
    the wgrad split sum) from their launchers' recorded launches: every dtype with ``full``, else bf16.
    Labels "<family>/fixed/<dtype>/<unit>"; the dtype is the run's, or fp32 for a kernel whose tensors
    are all fp32."""
    yield from _variants(_units_anywhere("_fixed_tile_units", list(_DTYPES) if full else ["bf16"]))


VARIANT_SOURCES = {"conv_bn_act": conv_bn_act_variants, "pool2d": pool2d_variants, "training": training_variants,
                   "fixed_tile": fixed_tile_variants}


def all_variants(full: bool = True, *, include_rejected: bool = False) -> list[KernelVariant]:
    """Every kernel's variants (see VARIANT_SOURCES; a kernel file adds its generator there);
    ``include_rejected``: also the conv forward units its fit rule prunes (tags["fits"] False)."""
    out = []
    for name, source in VARIANT_SOURCES.items():
        out += source(full, include_rejected=True) if include_rejected and name == "conv_bn_act" else source(full)
    return out
