"""conv_bn_act: the triton backend against the torch reference.

On CPU the Triton kernel runs under TRITON_INTERPRET=1 (conftest), which checks indexing, masking and
arithmetic, not GPU code generation; the same tests run compiled on a CUDA machine. Spatial sizes of
the network shapes are reduced so the interpreter stays fast; channel counts and kernel geometry are
the networks' own (inception_core.shapes).

bf16: the Triton 3.8 interpreter computes tl.dot on bf16 operands as raw bit patterns, so under the
interpreter the launcher sets the DOT_FP32 constexpr, which casts the bf16 tiles to fp32 right after
loading (exactly representable); loads, stores and the bf16 rounding of the result stay as on the GPU.
"""

import sys

import pytest
import torch

import inception_core
from inception_core.kernels import INTERPRETED
from inception_core.kernels.configs import GPU_CONFIGS, INTERPRETER_CONFIGS
from inception_core.ops import conv_bn_act, conv_bn_act_ref
from inception_core.ops.conv_bn_act import launch_conv_bn_act_triton
from inception_core.shapes import CONV_SHAPES
from inception_core.testing import LOW_PRECISION, conv_inputs, fp32_rtol, reduced_hw, rel_err


def _geometries():
    """One case per distinct conv geometry over the six networks, spatial size reduced.

    Under the interpreter every launch runs the one interpreter config, so two geometries with the same
    kernel, stride, padding, reduced input size and channel-masking class (C and K against the config's
    BLOCK_K and BLOCK_N: below one block, one block, several whole blocks, a partial last block) run the
    same code: the cheapest of each class stands for the others (``inception-core check`` runs them
    all). On a GPU each shape gets its own config from the heuristic, so every geometry runs."""
    block_n = block_k = None
    if INTERPRETED:
        kw = INTERPRETER_CONFIGS["conv_bn_act_fwd"][0].kwargs
        block_n, block_k = kw["BLOCK_N"], kw["BLOCK_K"]
    seen = {}
    for s in sorted(CONV_SHAPES, key=lambda s: s.in_channels * s.out_channels):
        hw = reduced_hw(s)
        key = (s.kernel, s.stride, s.padding)
        if INTERPRETED:
            key += (hw, _mask_class(s.in_channels, block_k), _mask_class(s.out_channels, block_n))
        else:
            key += (s.in_channels, s.out_channels)
        if key not in seen:
            seen[key] = pytest.param(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, hw,
                                     id=f"{s.model}.{s.layer}")
    return list(seen.values())


def _mask_class(channels: int, block: int) -> str:
    if channels <= block:
        return "one-block" if channels == block else "below-one-block"
    return "whole-blocks" if channels % block == 0 else "partial-last-block"


def _inputs(n, c, k, kernel, hw, dtype, device, *, layout="channels_last"):
    return conv_inputs(n, c, k, kernel, hw, dtype, device, channels_last=layout == "channels_last")


def _ref64(x, w, scale, shift, **kw):
    """Reference in float64 on the same (rounded) inputs."""
    up = lambda t: None if t is None else t.double()
    kw = dict(kw)
    if kw.get("residual") is not None:
        kw["residual"] = kw["residual"].double()
    return conv_bn_act_ref(up(x), up(w), up(scale), up(shift), **kw)


def _rel_err(y, ref):
    assert not torch.isnan(y).any(), "NaN in the result"
    return rel_err(y, ref)


def _torch_rel_err(x, w, scale, shift, ref, **kw):
    """The torch backend's own error in x's dtype against the float64 reference."""
    with inception_core.backend("torch"):
        y = conv_bn_act(x, w, scale, shift, **kw)
    return _rel_err(y, ref)


def _check(x, w, scale, shift, **kw):
    """Run triton, compare with the float64 reference; low precision must stay within 2x of the
    torch backend's own error on the same inputs (plus one rounding step of slack)."""
    with inception_core.backend("triton"):
        y = conv_bn_act(x, w, scale, shift, **kw)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert y.dtype == x.dtype and y.shape[0] == x.shape[0]
    ref = _ref64(x, w, scale, shift, **kw)
    err = _rel_err(y, ref)
    if x.dtype in LOW_PRECISION:
        eps = torch.finfo(x.dtype).eps
        assert err <= 2 * _torch_rel_err(x, w, scale, shift, ref, **kw) + eps, err
    else:
        assert err <= fp32_rtol(INTERPRETED), err  # 1e-5, or 2e-3 with TF32 on a GPU
    return y, err


@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", _geometries())
def test_network_shapes_fp32(c, k, kernel, stride, padding, hw, device):
    x, w, scale, shift = _inputs(2, c, k, kernel, hw, torch.float32, device)
    _check(x, w, scale, shift, stride=stride, padding=padding)


# One layer of each kernel geometry class in low precision.
LOW_PRECISION_CASES = [
    pytest.param(192, 64, (1, 1), (1, 1), (0, 0), (9, 9), id="1x1-mixed5b"),
    pytest.param(3, 32, (3, 3), (2, 2), (0, 0), (11, 11), id="3x3s2-stem-cin3"),
    pytest.param(128, 192, (1, 7), (1, 1), (0, 3), (7, 7), id="1x7-inceptionC"),
    pytest.param(128, 192, (7, 1), (1, 1), (3, 0), (7, 7), id="7x1-inceptionC"),
    pytest.param(48, 64, (5, 5), (1, 1), (2, 2), (7, 7), id="5x5-mixed5b"),
    pytest.param(384, 256, (1, 3), (1, 1), (0, 1), (5, 5), id="1x3-mixed7b"),
    pytest.param(3, 64, (7, 7), (2, 2), (3, 3), (13, 13), id="7x7s2-googlenet-stem"),
    pytest.param(288, 384, (3, 3), (2, 2), (0, 0), (9, 9), id="3x3s2-mixed6a"),
]


@pytest.mark.parametrize("dtype", LOW_PRECISION)
@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", LOW_PRECISION_CASES)
def test_network_shapes_low_precision(c, k, kernel, stride, padding, hw, dtype, device):
    x, w, scale, shift = _inputs(2, c, k, kernel, hw, dtype, device)
    _check(x, w, scale, shift, stride=stride, padding=padding)


@pytest.mark.parametrize("dtype", [torch.float32, *LOW_PRECISION])
@pytest.mark.parametrize(
    "n,c,k,kernel,stride,padding,hw",
    [
        pytest.param(1, 64, 80, (1, 1), 1, 0, (7, 7), id="batch1"),
        pytest.param(2, 3, 17, (3, 3), 1, 1, (6, 6), id="odd-channels-3-17"),
        pytest.param(2, 35, 17, (3, 3), 2, 0, (9, 9), id="odd-channels-35-stride2-valid"),
        pytest.param(3, 32, 48, (1, 1), 1, 0, (1, 1), id="1x1-spatial"),
        pytest.param(2, 32, 48, (3, 3), 1, 1, (1, 1), id="1x1-spatial-3x3-same"),
        pytest.param(2, 16, 24, (3, 3), 2, 0, (7, 9), id="stride2-valid-odd-nonsquare"),
        pytest.param(2, 16, 24, (3, 3), (2, 1), (0, 1), (9, 8), id="mixed-stride-padding"),
        pytest.param(2, 130, 70, (1, 1), 1, 0, (5, 5), id="channels-past-one-block"),
    ],
)
def test_edge_cases(n, c, k, kernel, stride, padding, hw, dtype, device):
    x, w, scale, shift = _inputs(n, c, k, kernel, hw, dtype, device)
    _check(x, w, scale, shift, stride=stride, padding=padding)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_nchw_and_noncontiguous_inputs(dtype, device):
    x, w, scale, shift = _inputs(2, 24, 40, (3, 3), (9, 9), dtype, device, layout="nchw")
    assert x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    _check(x, w, scale, shift, padding=1)  # NCHW input, read through its strides
    _check(x, w.contiguous(), scale, shift, padding=1)  # NCHW (OIHW-contiguous) weight
    wide = torch.randn(2, 50, 9, 9, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    _check(wide[:, 13:37], w, scale, shift, padding=1)  # channel slice of a bigger NHWC tensor
    tall = torch.randn(2, 24, 18, 9, device=device).to(dtype)
    _check(tall[:, :, ::2], w, scale, shift, padding=1)  # strided rows
    _check(x.transpose(2, 3), w, scale, shift, padding=1)  # transposed spatial dims


@pytest.mark.parametrize("dtype", [torch.float32, *LOW_PRECISION])
def test_residual_res_scale_and_act_none(dtype, device):
    x, w, scale, shift = _inputs(2, 32, 48, (1, 1), (7, 7), dtype, device)
    res = torch.randn(2, 48, 7, 7, device=device).to(dtype)  # NCHW residual: read through its strides
    for act in ("relu", "none"):
        y, _ = _check(x, w, scale, shift, residual=res, res_scale=0.17, act=act)
        if act == "none":
            assert (y < 0).any()  # act "none" must keep negatives
    _check(x, w, None, None, act="none")  # no scale / shift
    _check(x, w, scale, None, residual=res.contiguous(memory_format=torch.channels_last), res_scale=1.0)


@pytest.mark.parametrize("dtype", [torch.float32, *LOW_PRECISION])
def test_slice_write_leaves_rest_untouched(dtype, device):
    x, w, scale, shift = _inputs(2, 40, 24, (3, 3), (8, 8), dtype, device)
    out = torch.full((2, 64, 8, 8), float("nan"), device=device, dtype=dtype)
    out = out.contiguous(memory_format=torch.channels_last)
    res = torch.randn(2, 24, 8, 8, device=device).to(dtype)
    with inception_core.backend("triton"):
        y = conv_bn_act(x, w, scale, shift, padding=1, residual=res, res_scale=0.2, out=out, out_offset=17)
    assert y.data_ptr() == out[:, 17:].data_ptr() and y.shape == (2, 24, 8, 8)
    assert torch.isnan(out[:, :17]).all() and torch.isnan(out[:, 41:]).all()
    ref = _ref64(x, w, scale, shift, padding=1, residual=res, res_scale=0.2)
    tol = 1e-5 if dtype == torch.float32 and INTERPRETED else 2e-2 if dtype in LOW_PRECISION else 2e-3
    torch.testing.assert_close(out[:, 17:41].double(), ref, rtol=tol, atol=tol)


def test_two_branches_fill_one_buffer(device):
    """Zero-copy concat: two convs write disjoint slices of one block output, reading a third slice."""
    buf = torch.randn(2, 96, 7, 7, device=device).contiguous(memory_format=torch.channels_last)
    x = buf[:, :32]  # the block input lives in the same buffer, channels [0, 32)
    w1 = torch.randn(16, 32, 1, 1, device=device).contiguous(memory_format=torch.channels_last)
    w2 = torch.randn(48, 32, 3, 3, device=device).contiguous(memory_format=torch.channels_last)
    expected = torch.cat([x, conv_bn_act_ref(x, w1), conv_bn_act_ref(x, w2, padding=1)], dim=1)
    with inception_core.backend("triton"):
        conv_bn_act(x, w1, out=buf, out_offset=32)
        conv_bn_act(x, w2, padding=1, out=buf, out_offset=48)
    torch.testing.assert_close(buf, expected, rtol=1e-5, atol=1e-5)


def _config_id(c):
    return "bm{BLOCK_M}-bn{BLOCK_N}-bk{BLOCK_K}".format(**c.kwargs) + f"-w{c.num_warps}-s{c.num_stages}"


@pytest.mark.parametrize("config", GPU_CONFIGS["conv_bn_act_fwd"], ids=_config_id)
def test_every_shipped_config(config, device):
    """Every GPU config computes the right answer (indexing and masking with its tile sizes)."""
    x, w, scale, shift = _inputs(2, 40, 70, (3, 3), (9, 7), torch.float32, device)
    res = torch.randn(2, 70, 5, 4, device=device)
    y = torch.full((2, 70, 5, 4), float("nan"), device=device).contiguous(memory_format=torch.channels_last)
    launch_conv_bn_act_triton(x, w, scale, shift, res, (2, 2), (1, 1), "relu", 0.3, y, config=config)
    ref = _ref64(x, w, scale, shift, stride=2, padding=1, residual=res, res_scale=0.3)
    tol = 1e-5 if INTERPRETED else 2e-3
    torch.testing.assert_close(y.double(), ref, rtol=tol, atol=tol)


def test_tf32_on_the_gpu(device, monkeypatch):
    if device != "cuda" or INTERPRETED:
        pytest.skip("TF32 exists only on a CUDA GPU (the interpreter computes fp32 dots exactly)")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    x, w, scale, shift = _inputs(4, 192, 64, (3, 3), (17, 17), torch.float32, device)
    _check(x, w, scale, shift, padding=1)  # within TF32_RTOL


def test_nan_input_propagates(device):
    x, w, scale, shift = _inputs(1, 16, 16, (1, 1), (3, 3), torch.float32, device)
    x[0, :, 1, 1] = float("nan")
    with inception_core.backend("triton"):
        y = conv_bn_act(x, w, scale, shift)
    assert torch.isnan(y[0, :, 1, 1]).all()  # relu must not turn NaN into 0
    assert not torch.isnan(y[0, :, 0, 0]).any()


def test_float64_on_the_interpreter(device):
    if not INTERPRETED:
        pytest.skip("float64 runs through the interpreter only; on CUDA the triton backend rejects it")
    x, w, scale, shift = _inputs(2, 8, 12, (3, 3), (5, 5), torch.float64, device)
    scale, shift = scale.double(), shift.double()
    with inception_core.backend("triton"):
        y = conv_bn_act(x, w, scale, shift, padding=1)
    ref = conv_bn_act_ref(x, w, scale, shift, padding=1)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


def test_empty_batch(device):
    x, w, scale, shift = _inputs(1, 8, 12, (3, 3), (5, 5), torch.float32, device)
    with inception_core.backend("triton"):
        y = conv_bn_act(x[:0], w, scale, shift)
    assert y.shape == (0, 12, 3, 3)


def test_int64_indexing_flag(device, monkeypatch):
    """The int64 offset path computes the same result (the flag is forced on for a small tensor)."""
    monkeypatch.setattr(sys.modules["inception_core.ops._launch_common"], "INT32_LIMIT", 16)
    x, w, scale, shift = _inputs(2, 20, 24, (3, 3), (7, 7), torch.float32, device)
    _check(x, w, scale, shift, stride=2)


@pytest.mark.parametrize("backend_name", ["torch", "triton"])
def test_opcheck(backend_name, device):
    x, w, scale, shift = _inputs(2, 16, 24, (3, 3), (6, 6), torch.float32, device)
    res = torch.randn(2, 24, 6, 6, device=device).contiguous(memory_format=torch.channels_last)
    out = torch.randn(2, 40, 6, 6, device=device).contiguous(memory_format=torch.channels_last)
    with inception_core.backend(backend_name):
        torch.library.opcheck(torch.ops.inception_core.conv_bn_act.default,
                              (x, w, scale, shift, res, [1, 1], [1, 1], "relu", 0.5))
        torch.library.opcheck(torch.ops.inception_core.conv_bn_act.default,
                              (x, w, None, None, None, [2, 2], [0, 0], "none", 1.0))
        torch.library.opcheck(torch.ops.inception_core.conv_bn_act_out.default,
                              (x, w, scale, shift, None, [1, 1], [1, 1], "relu", 1.0, out, 8))


def test_torch_compile_fullgraph(device):
    """torch.compile traces through both custom ops without a graph break."""
    x, w, scale, shift = _inputs(2, 16, 24, (3, 3), (6, 6), torch.float32, device)

    def block(x):
        out = torch.empty(2, 48, 6, 6, device=x.device).contiguous(memory_format=torch.channels_last)
        conv_bn_act(x, w, scale, shift, padding=1, out=out, out_offset=0)
        conv_bn_act(x, w, scale, shift, padding=1, act="none", out=out, out_offset=24)
        return conv_bn_act(out, torch.ones(8, 48, 1, 1, device=x.device) / 48)

    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), block(x), rtol=1e-5, atol=1e-5)


def _bad_input_cases(device):
    x = torch.randn(2, 8, 6, 6, device=device)
    w = torch.randn(16, 8, 3, 3, device=device)
    cl = dict(memory_format=torch.channels_last)
    return [
        ("x", dict(x=x[0])),  # 3-D input
        ("x", dict(x=x.to(torch.int32))),
        ("x", dict(x=[1.0])),
        ("weight", dict(w=w.half())),
        ("weight", dict(w=torch.randn(16, 9, 3, 3, device=device))),  # channel mismatch
        ("scale", dict(scale=torch.ones(15, device=device))),
        ("scale", dict(scale=torch.ones(16, device=device, dtype=torch.float16))),
        ("shift", dict(shift=torch.ones(1, 16, device=device))),
        ("residual", dict(residual=torch.randn(2, 16, 5, 5, device=device))),
        ("residual", dict(residual=torch.randn(2, 16, 4, 4, device=device).half())),
        ("stride", dict(stride=0)),
        ("stride", dict(stride=(1, 2, 3))),
        ("padding", dict(padding=-1)),
        ("act", dict(act="gelu")),
        ("x", dict(x=torch.randn(2, 8, 2, 2, device=device))),  # smaller than the kernel
        ("out", dict(out=torch.empty(2, 20, 4, 4, device=device).contiguous(**cl), out_offset=8)),  # too small
        ("out", dict(out=torch.empty(2, 32, 4, 4, device=device))),  # NCHW, not channels_last
        ("out", dict(out=torch.empty(2, 32, 4, 4, device=device, dtype=torch.float16).contiguous(**cl))),
        ("out", dict(out=torch.empty(2, 32, 5, 4, device=device).contiguous(**cl))),  # wrong spatial size
        ("out_offset", dict(out=torch.empty(2, 32, 4, 4, device=device).contiguous(**cl), out_offset=-1)),
    ]


@pytest.mark.parametrize("case", range(20))
def test_bad_input_names_the_argument(case, device, monkeypatch):
    """Each bad argument raises before any launch, naming the argument."""
    name, kw = _bad_input_cases(device)[case]
    x = kw.pop("x", torch.randn(2, 8, 6, 6, device=device))
    w = kw.pop("w", torch.randn(16, 8, 3, 3, device=device))
    launched = []
    monkeypatch.setattr(sys.modules["inception_core.ops.conv_bn_act"], "launch_conv_bn_act_triton",
                        lambda *a, **k: launched.append(a))
    with inception_core.backend("triton"), pytest.raises((ValueError, TypeError), match=rf"^{name}: "):
        conv_bn_act(x, w, kw.pop("scale", None), kw.pop("shift", None), **kw)
    assert not launched


def test_out_overlapping_input_is_rejected(device):
    buf = torch.randn(2, 48, 6, 6, device=device).contiguous(memory_format=torch.channels_last)
    w = torch.randn(16, 32, 1, 1, device=device)
    with pytest.raises(ValueError, match="^x: shares memory"):
        conv_bn_act(buf[:, :32], w, out=buf, out_offset=16)  # reads channels 16..31 that it would write
    with pytest.raises(ValueError, match="^residual: shares memory"):
        conv_bn_act(torch.randn(2, 32, 6, 6, device=device), w, residual=buf[:, 32:], out=buf, out_offset=32)


def test_forced_backend_that_cannot_run_raises(device, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0" if INTERPRETED else "1")  # now disagrees with import time
    x, w, scale, shift = _inputs(1, 8, 8, (1, 1), (3, 3), torch.float32, device)
    with inception_core.backend("triton"), pytest.raises(inception_core.backends.BackendUnavailableError,
                                                         match="TRITON_INTERPRET"):
        conv_bn_act(x, w, scale, shift)
