"""max_pool2d / avg_pool2d: the triton backend against torch.nn.functional, for the pools of the six
networks (channel counts from the networks, spatial sizes reduced so the interpreter stays fast),
edge cases, slice writes, every shipped GPU config, opcheck and argument checks."""

import pytest
import torch

import inception_core
from inception_core.kernels.configs import GPU_CONFIGS
from inception_core.ops import _launch_common, avg_pool2d, avg_pool2d_ref, max_pool2d, max_pool2d_ref
from inception_core.ops.pool2d import launch_pool2d_triton, pool_output_size

CL = torch.channels_last
POOLS = {"max": max_pool2d, "avg": avg_pool2d}
REFS = {"max": max_pool2d_ref, "avg": avg_pool2d_ref}

# (dtype, atol, rtol) for average pooling; max pooling is compared exactly (atol = rtol = 0) in every
# dtype. The reference runs on inputs upcast to fp64 (fp32 x) or fp32 (fp16/bf16 x) and is cast back:
# the kernel sums in fp32 and rounds once, so fp32 differs by summation order only and fp16/bf16 by at
# most one ulp of the output (<= 2^-10 and 2^-7 relative). bf16 runs under the interpreter only
# because the kernel casts every loaded value to fp32 before any arithmetic (the interpreter computes
# bf16 arithmetic on raw bits; its loads and stores are right). Its fp32 -> bf16 cast truncates
# instead of rounding to nearest (measured with triton 3.8), hence up to one ulp there, half on a GPU.
DTYPES = [
    pytest.param(torch.float32, 1e-6, 1e-6, id="fp32"),
    pytest.param(torch.float16, 1e-5, 2e-3, id="fp16"),
    pytest.param(torch.bfloat16, 1e-5, 1e-2, id="bf16"),
]


def _ref_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float32, torch.float64) else torch.float32


def _reference(op: str, x: torch.Tensor, **kw) -> torch.Tensor:
    return REFS[op](x.to(_ref_dtype(x.dtype)), **kw).to(x.dtype)


def _input(n, c, h, w, dtype, device, *, layout=CL) -> torch.Tensor:
    return torch.randn(n, c, h, w, device=device).to(dtype).contiguous(memory_format=layout)


def _check(op: str, x: torch.Tensor, atol: float, rtol: float, **kw) -> torch.Tensor:
    """Run the triton backend, compare with the upcast reference; returns the result."""
    with inception_core.backend("triton"):
        y = POOLS[op](x, **kw)
    ref = _reference(op, x, **kw)
    assert y.shape == ref.shape
    assert y.dtype == x.dtype
    assert y.is_contiguous(memory_format=CL)
    if op == "max":
        torch.testing.assert_close(y, ref, atol=0, rtol=0, equal_nan=True)
    else:
        torch.testing.assert_close(y, ref, atol=atol, rtol=rtol, equal_nan=True)
    return y


MAX3S2 = dict(kernel_size=3, stride=2)
MAX3S2_CEIL = dict(kernel_size=3, stride=2, ceil_mode=True)
MAX2S2_CEIL = dict(kernel_size=2, stride=2, ceil_mode=True)
MAX3S1P1_CEIL = dict(kernel_size=3, stride=1, padding=1, ceil_mode=True)
AVG3S1P1 = dict(kernel_size=3, stride=1, padding=1)  # count_include_pad=True (torch default)
AVG3S1P1_EXCL = dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)
AVG3S1P1_CEIL = dict(kernel_size=3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)

# (op, N, C, H, W, kwargs): the pools the six networks run; real sizes in the comments.
NETWORK_CASES = [
    # max 3x3/s2 valid: v3/v4/IR stems and reductions.
    pytest.param("max", 2, 64, 15, 15, MAX3S2, id="v3-v4-ir-stem-maxpool-147to73-64ch"),
    pytest.param("max", 2, 192, 13, 13, MAX3S2, id="v3-stem-maxpool-71to35-192ch"),
    pytest.param("max", 2, 288, 11, 11, MAX3S2, id="v3-mixed6a-35to17-288ch"),
    pytest.param("max", 1, 768, 17, 17, MAX3S2, id="v3-mixed7a-17to8-768ch-real-size"),
    pytest.param("max", 2, 1088, 9, 9, MAX3S2, id="irv2-mixed7a-17to8-1088ch"),
    # max 3x3/s2 ceil_mode: GoogLeNet maxpool1-3 and BN-Inception pools (even sizes: ceil adds a row).
    pytest.param("max", 2, 64, 16, 16, MAX3S2_CEIL, id="googlenet-maxpool1-112to56-64ch"),
    pytest.param("max", 2, 192, 14, 14, MAX3S2_CEIL, id="googlenet-maxpool2-56to28-192ch"),
    pytest.param("max", 2, 480, 10, 10, MAX3S2_CEIL, id="googlenet-maxpool3-28to14-480ch"),
    pytest.param("max", 2, 608, 14, 14, MAX3S2_CEIL, id="bninception-4e-pool-14to7-608ch-real-size"),
    # max 2x2/s2 ceil_mode: GoogLeNet maxpool4 14->7 (stride defaults to kernel_size there).
    pytest.param("max", 2, 832, 14, 14, dict(kernel_size=2, ceil_mode=True), id="googlenet-maxpool4-14to7"),
    # max 3x3/s1/p1 ceil_mode: GoogLeNet branch4 pools, BN-Inception 5b pool.
    pytest.param("max", 2, 192, 12, 12, MAX3S1P1_CEIL, id="googlenet-3a-branch4-28x28-192ch"),
    pytest.param("max", 2, 1024, 7, 7, MAX3S1P1_CEIL, id="bninception-5b-pool-7x7-real-size"),
    # avg 3x3/s1/p1 count_include_pad=True: Inception-v3 A/C/E pool branches.
    pytest.param("avg", 2, 192, 13, 13, AVG3S1P1, id="v3-mixed5b-pool-35x35-192ch"),
    pytest.param("avg", 1, 768, 9, 9, AVG3S1P1, id="v3-mixed6b-pool-17x17-768ch"),
    pytest.param("avg", 2, 1280, 8, 8, AVG3S1P1, id="v3-mixed7b-pool-8x8-1280ch-real-size"),
    # avg 3x3/s1/p1 count_include_pad=False: Inception-v4 A/B/C, Inception-ResNet-v2 Mixed_5b.
    pytest.param("avg", 2, 384, 11, 11, AVG3S1P1_EXCL, id="v4-inception-a-35x35-384ch"),
    pytest.param("avg", 1, 1024, 9, 9, AVG3S1P1_EXCL, id="v4-inception-b-17x17-1024ch"),
    pytest.param("avg", 2, 1536, 8, 8, AVG3S1P1_EXCL, id="v4-inception-c-8x8-1536ch-real-size"),
    pytest.param("avg", 2, 192, 13, 13, AVG3S1P1_EXCL, id="irv2-mixed5b-pool-35x35-192ch"),
    # avg 5x5/s3: Inception-v3 aux head, 17->5 (real size).
    pytest.param("avg", 2, 768, 17, 17, dict(kernel_size=5, stride=3), id="v3-aux-17to5-768ch"),
    # avg 5x5/s3 ceil_mode: the original (Caffe) GoogLeNet aux heads, 14->4, Caffe rounds up
    # (torchvision's GoogLeNet uses adaptive_avg_pool2d to 4x4 instead, a different window).
    pytest.param("avg", 2, 512, 14, 14, dict(kernel_size=5, stride=3, ceil_mode=True), id="caffe-googlenet-aux"),
    # global average pools (kernel = H).
    pytest.param("avg", 2, 2048, 8, 8, dict(kernel_size=8), id="v3-global-8x8-2048ch"),
    pytest.param("avg", 2, 1536, 8, 8, dict(kernel_size=8), id="v4-irv2-global-8x8-1536ch"),
    pytest.param("avg", 2, 1024, 7, 7, dict(kernel_size=7), id="googlenet-global-7x7-1024ch"),
    # BN-Inception global_pool: AvgPool2d(7, stride=1, ceil_mode=True, count_include_pad=True).
    pytest.param("avg", 2, 1024, 7, 7, dict(kernel_size=7, stride=1, ceil_mode=True), id="bninception-global"),
    # BN-Inception pool branches: AvgPool2d(3, 1, 1, ceil_mode=True, count_include_pad=True).
    pytest.param("avg", 2, 192, 12, 12, AVG3S1P1_CEIL, id="bninception-3a-pool-28x28-192ch"),
    pytest.param("avg", 2, 576, 14, 14, AVG3S1P1_CEIL, id="bninception-4a-pool-14x14-real-size"),
]


@pytest.mark.parametrize("op, n, c, h, w, kw", NETWORK_CASES)
def test_network_pools_fp32(op, n, c, h, w, kw, device):
    _check(op, _input(n, c, h, w, torch.float32, device), 1e-6, 1e-6, **kw)


# A subset of the network pools in every dtype (the rest of the dtype coverage is in the edge cases).
DTYPE_CASES = [
    pytest.param("max", 2, 288, 11, 11, MAX3S2, id="max3x3s2-288ch"),  # v3 Mixed_6a
    pytest.param("max", 2, 192, 14, 14, MAX3S2_CEIL, id="max3x3s2-ceil-192ch"),  # GoogLeNet maxpool2
    pytest.param("avg", 2, 192, 13, 13, AVG3S1P1, id="avg3x3-incl-192ch"),  # v3 Mixed_5b
    pytest.param("avg", 2, 384, 11, 11, AVG3S1P1_EXCL, id="avg3x3-excl-384ch"),  # v4 Inception-A
    pytest.param("avg", 2, 768, 17, 17, dict(kernel_size=5, stride=3), id="avg5x5s3-768ch"),  # v3 aux
    pytest.param("avg", 2, 1024, 7, 7, dict(kernel_size=7), id="global7x7-1024ch"),  # GoogLeNet
]


@pytest.mark.parametrize("dtype, atol, rtol", DTYPES[1:])
@pytest.mark.parametrize("op, n, c, h, w, kw", DTYPE_CASES)
def test_network_pools_low_precision(op, n, c, h, w, kw, dtype, atol, rtol, device):
    _check(op, _input(n, c, h, w, dtype, device), atol, rtol, **kw)


EDGE_CASES = [
    pytest.param(1, 64, 9, 9, MAX3S2, id="batch1"),
    pytest.param(2, 3, 9, 9, MAX3S2_CEIL, id="3ch"),  # odd channels, below any channel block
    pytest.param(2, 17, 7, 7, AVG3S1P1_EXCL, id="17ch"),
    pytest.param(2, 35, 7, 7, AVG3S1P1_CEIL, id="35ch"),
    pytest.param(2, 24, 1, 1, dict(kernel_size=3, stride=1, padding=1), id="1x1-3x3p1"),  # all pad
    pytest.param(2, 24, 1, 1, MAX2S2_CEIL, id="1x1-2x2s2-ceil"),  # window past the input
    pytest.param(2, 40, 9, 11, MAX3S2, id="odd-9x11-s2"),
    pytest.param(2, 40, 9, 11, MAX3S2_CEIL, id="odd-9x11-s2-ceil"),
    pytest.param(2, 40, 13, 13, MAX2S2_CEIL, id="odd-13-2x2s2-ceil"),  # last window 1 row
    pytest.param(2, 40, 16, 16, dict(kernel_size=5, stride=3, ceil_mode=True), id="5x5s3-ceil-partial"),
    pytest.param(2, 40, 10, 9, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)), id="rect-window"),
]


@pytest.mark.parametrize("dtype, atol, rtol", DTYPES)
@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("n, c, h, w, kw", EDGE_CASES)
def test_edge_cases(n, c, h, w, kw, op, dtype, atol, rtol, device):
    if op == "max" and kw.get("count_include_pad") is not None:
        kw = {k: v for k, v in kw.items() if k != "count_include_pad"}
    _check(op, _input(n, c, h, w, dtype, device), atol, rtol, **kw)
    if op == "avg" and "count_include_pad" not in kw:
        _check(op, _input(n, c, h, w, dtype, device), atol, rtol, count_include_pad=False, **kw)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_float64(op, device):
    if device == "cuda":
        pytest.skip("float64 runs on the triton backend only under the interpreter")
    x = _input(2, 40, 9, 9, torch.float64, device)
    with inception_core.backend("triton"):
        y = POOLS[op](x, kernel_size=3, stride=2, padding=1)
    torch.testing.assert_close(y, REFS[op](x, kernel_size=3, stride=2, padding=1), atol=1e-14, rtol=1e-14)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_nchw_input(op, device):
    # NCHW (torch.contiguous_format) input: read through its strides, result still channels_last.
    x = _input(2, 48, 9, 9, torch.float32, device, layout=torch.contiguous_format)
    _check(op, x, 1e-6, 1e-6, **AVG3S1P1)
    _check(op, x, 1e-6, 1e-6, **MAX3S2_CEIL)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_non_contiguous_input(op, device):
    big = _input(2, 64, 18, 9, torch.float32, device)
    _check(op, big[:, 5:45], 1e-6, 1e-6, **MAX3S2)  # channel slice of a channels_last tensor
    _check(op, big[:, :, ::2], 1e-6, 1e-6, **AVG3S1P1)  # every other row
    nchw = _input(2, 64, 9, 9, torch.float32, device, layout=torch.contiguous_format)
    _check(op, nchw[:, 1::3, :, 1:], 1e-6, 1e-6, **AVG3S1P1_CEIL if op == "avg" else MAX3S1P1_CEIL)


@pytest.mark.parametrize("dtype, atol, rtol", DTYPES)
@pytest.mark.parametrize("backend_name", ["triton", "torch"])
def test_slice_write(backend_name, dtype, atol, rtol, device):
    # Two pools of a GoogLeNet-like block writing their channel slices of one NaN-poisoned output.
    n, oh, ow, c1, c2, total = 2, 7, 7, 24, 40, 100
    out = torch.full((n, total, oh, ow), float("nan"), dtype=dtype, device=device).contiguous(memory_format=CL)
    x1 = _input(n, c1, 7, 7, dtype, device)
    x2 = _input(n, c2, 14, 14, dtype, device)
    with inception_core.backend(backend_name):
        y1 = avg_pool2d(x1, 3, 1, 1, count_include_pad=False, out=out, out_offset=10)
        y2 = max_pool2d(x2, 3, 2, ceil_mode=True, out=out, out_offset=50)
    assert y1.data_ptr() == out[:, 10:].data_ptr() and y2.data_ptr() == out[:, 50:].data_ptr()
    assert y1.shape == (n, c1, oh, ow) and y2.shape == (n, c2, oh, ow)
    ref1 = _reference("avg", x1, kernel_size=3, stride=1, padding=1, count_include_pad=False)
    ref2 = _reference("max", x2, kernel_size=3, stride=2, ceil_mode=True)
    torch.testing.assert_close(out[:, 10:10 + c1], ref1, atol=atol, rtol=rtol)
    torch.testing.assert_close(out[:, 50:50 + c2], ref2, atol=0, rtol=0)
    untouched = torch.ones(total, dtype=torch.bool)
    untouched[10:10 + c1] = False
    untouched[50:50 + c2] = False
    assert out[:, untouched].isnan().all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_max_pool_nan_and_inf(dtype, device):
    x = _input(2, 20, 9, 9, dtype, device)
    x[0, 3, 4, 4] = float("nan")  # in four 3x3/s2 windows
    x[1, 7, 0, 0] = float("nan")  # corner: in one window, and under the padding of the p1 pools
    x[1, 11, :3, :3] = float("-inf")  # a window of -inf stays -inf
    x[0, 12, 6, 6] = float("inf")
    for kw in (MAX3S2, MAX3S1P1_CEIL, dict(kernel_size=9)):
        y = _check("max", x, 0, 0, **kw)
        assert y.isnan().any()
    assert _check("max", x, 0, 0, **MAX3S2)[1, 11, 0, 0] == float("-inf")


def test_avg_pool_nan_propagates(device):
    x = _input(2, 20, 9, 9, torch.float32, device)
    x[0, 3, 4, 4] = float("nan")
    x[1, 5, 2, 2] = float("inf")
    y = _check("avg", x, 1e-6, 1e-6, **AVG3S1P1_EXCL)
    assert y[0, 3, 3:6, 3:6].isnan().all() and y[1, 5, 1:4, 1:4].isinf().all()


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("config", GPU_CONFIGS["pool2d_fwd"], ids=lambda c: "P{BLOCK_P}xC{BLOCK_C}".format(**c.kwargs))
def test_every_gpu_config(config, op, device):
    # Every shipped config once (autotune picks one per shape; all must be right).
    x = _input(2, 40, 9, 9, torch.float32, device)
    kw = dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
    oh, ow = pool_output_size((9, 9), kw["kernel_size"], kw["stride"], kw["padding"], True)
    y = torch.full((2, 40, oh, ow), float("nan"), device=device).contiguous(memory_format=CL)
    launch_pool2d_triton(x, kw["kernel_size"], kw["stride"], kw["padding"], op == "max", False, y,
                         config=config)
    ref_kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    if op == "avg":
        ref_kw["count_include_pad"] = False
    torch.testing.assert_close(y, _reference(op, x, **ref_kw), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_int64_offsets(op, device, monkeypatch):
    # The int64 path (tensors >= 2**31 elements) forced on a small tensor: same result.
    monkeypatch.setattr(_launch_common, "INT32_LIMIT", 0)
    _check(op, _input(2, 40, 9, 9, torch.float32, device), 1e-6, 1e-6, **MAX3S2_CEIL)


@pytest.mark.parametrize("h", range(1, 12))
@pytest.mark.parametrize("k, s, p", [(1, 1, 0), (2, 2, 0), (3, 2, 0), (3, 2, 1), (3, 1, 1), (5, 3, 0), (5, 3, 2)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_output_size_matches_torch(h, k, s, p, ceil_mode):
    x = torch.empty(1, 1, h, h, device="meta")
    try:
        expected = tuple(torch.nn.functional.max_pool2d(x, k, s, p, ceil_mode=ceil_mode).shape[2:])
    except RuntimeError:  # torch: "Output size is too small"
        expected = None
    got = pool_output_size((h, h), (k, k), (s, s), (p, p), ceil_mode)
    if expected is None:
        assert min(got) < 1
    else:
        assert got == expected


def _op_args(op: str, x: torch.Tensor, out: torch.Tensor | None = None):
    args = [x, [3, 3], [2, 2], [1, 1], True]
    if op == "avg":
        args.append(False)
    if out is not None:
        args += [out, 4]
    return tuple(args)


@pytest.mark.parametrize("backend_name", ["torch", "triton"])
@pytest.mark.parametrize("op", ["max", "avg"])
def test_opcheck(op, backend_name, device):
    x = _input(2, 8, 7, 7, torch.float32, device)
    out = torch.randn(2, 16, 4, 4, device=device).contiguous(memory_format=CL)
    functional = getattr(torch.ops.inception_core, f"{op}_pool2d").default
    slice_op = getattr(torch.ops.inception_core, f"{op}_pool2d_out").default
    with inception_core.backend(backend_name):
        torch.library.opcheck(functional, _op_args(op, x))
        torch.library.opcheck(functional, _op_args(op, x.contiguous()))  # NCHW in, channels_last out
        torch.library.opcheck(slice_op, _op_args(op, x, out))


def test_torch_backend_matches_reference(device):
    x = _input(2, 16, 9, 9, torch.float32, device, layout=torch.contiguous_format)
    with inception_core.backend("torch"):
        y = avg_pool2d(x, 3, 1, 1, ceil_mode=True, count_include_pad=False)
        z = max_pool2d(x, 3, 2)
    assert y.is_contiguous(memory_format=CL) and z.is_contiguous(memory_format=CL)
    torch.testing.assert_close(y, torch.nn.functional.avg_pool2d(x, 3, 1, 1, True, False), atol=0, rtol=0)
    torch.testing.assert_close(z, torch.nn.functional.max_pool2d(x, 3, 2), atol=0, rtol=0)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_bad_arguments(op, device):
    pool = POOLS[op]
    x = _input(2, 8, 9, 9, torch.float32, device)
    good_out = torch.full((2, 16, 4, 4), float("nan"), device=device).contiguous(memory_format=CL)
    with pytest.raises(ValueError, match="x: expected a 4-D"):
        pool(x[0], 3, 2)
    with pytest.raises(TypeError, match="x: expected dtype"):
        pool(torch.randint(0, 9, (2, 8, 9, 9), device=device), 3, 2)
    with pytest.raises(ValueError, match="padding"):
        pool(x, 3, 2, padding=2)  # torch: pad should be at most half of the kernel size
    with pytest.raises(ValueError, match="padding"):
        pool(x, (3, 4), 2, padding=(1, 3))
    with pytest.raises(ValueError, match="kernel_size"):
        pool(x, 0)
    with pytest.raises(ValueError, match="stride"):
        pool(x, 3, 0)
    with pytest.raises(TypeError, match="ceil_mode"):
        pool(x, 3, 2, 0, 1)
    with pytest.raises(ValueError, match="x: spatial size"):
        pool(x[:, :, :2, :2], 3, 2)  # output size 0, as torch rejects
    with pytest.raises(ValueError, match="out: expected shape"):
        pool(x, 3, 2, out=good_out[:, :4], out_offset=0)  # too few channels
    with pytest.raises(ValueError, match="out: expected shape"):
        pool(x, 3, 2, out=good_out, out_offset=9)  # [9, 17) does not fit in 16
    with pytest.raises(ValueError, match="out: expected shape"):
        pool(x, 3, 2, out=good_out[:, :, :3], out_offset=0)  # wrong spatial size
    with pytest.raises(ValueError, match="out: expected a channels_last"):
        pool(x, 3, 2, out=good_out.contiguous(), out_offset=0)
    with pytest.raises(TypeError, match="out: expected x's dtype"):
        pool(x, 3, 2, out=good_out.half(), out_offset=0)
    # The "meta" device stands in for another device: the check compares devices before any launch.
    with pytest.raises(ValueError, match="out: expected a tensor on x's device"):
        pool(x, 3, 2, out=torch.empty(2, 16, 4, 4, device="meta").contiguous(memory_format=CL))
    with pytest.raises(ValueError, match="out_offset"):
        pool(x, 3, 2, out=good_out, out_offset=-1)
    with pytest.raises(ValueError, match="x: shares memory"):
        pool(good_out[:, :8], 1, out=good_out, out_offset=4)  # reads channels it would write
    if op == "avg":
        with pytest.raises(TypeError, match="count_include_pad"):
            pool(x, 3, 2, count_include_pad=None)
    assert good_out.isnan().all()  # no check let a launch through


def test_float64_rejected_on_cuda_triton(device):
    if device != "cuda":
        pytest.skip("the float64 rejection applies to the compiled (non-interpreted) triton backend on CUDA")
    x = _input(1, 8, 5, 5, torch.float64, device)
    with inception_core.backend("triton"), pytest.raises(TypeError, match="x: float64"):
        max_pool2d(x, 3)
