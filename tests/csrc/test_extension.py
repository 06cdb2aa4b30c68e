"""The CUDA C++ backend (csrc/, ``torch.ops.inception_core_cuda``).

Without a GPU (CI): the extension built with ``FORCE_CUDA=1`` loads, every op has a CUDA kernel and the
schema of the Python contract, it coexists with the Python custom ops of the ``inception_core``
namespace, and the cuda backend is refused with the reason. With ``FORCE_CUDA=1`` in the environment a
missing extension fails instead of skipping, so a csrc change that does not build cannot pass CI.

On a GPU: the ops on the cuda backend against the float64 torch reference over every conv and pool
geometry of the six networks (spatial sizes reduced as in tests/ops), the epilogue variants, slice
writes into a NaN-poisoned buffer, strided inputs, NaN propagation and the C++ argument checks.
"""

import os

import pytest
import torch

import inception_core
from inception_core import _csrc_build, _cuda_ext, backends
from inception_core.ops import avg_pool2d, conv_bn_act, conv_bn_act_ref, max_pool2d
from inception_core.shapes import CONV_SHAPES, POOL_SHAPES
from inception_core.testing import conv_inputs, conv_layer_cases, passes, pool_layer_cases, rel_err

pytestmark = pytest.mark.cuda_ext

CL = torch.channels_last
DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.float16, id="fp16"),
          pytest.param(torch.bfloat16, id="bf16")]


@pytest.fixture(scope="module")
def extension():
    err = _cuda_ext.prebuilt_error()
    if err is not None:
        if os.environ.get("FORCE_CUDA", "0") == "1":
            pytest.fail(f"FORCE_CUDA=1 but the extension is unavailable: {err}")
        pytest.skip(err)


@pytest.fixture
def gpu(extension):
    if not torch.cuda.is_available():
        pytest.skip("the CUDA C++ kernels need a CUDA device")
    return torch.device("cuda")


def _normalised(schema):
    """(name, type, writes) per argument; SymInt (Python custom ops) and int (C++) are the same here."""
    return [(a.name, str(a.type).replace("SymInt", "int"), a.alias_info is not None and a.alias_info.is_write)
            for a in schema.arguments]


# ---------------------------------------------------------------------------------------------------
# no GPU needed


@pytest.mark.parametrize("name", _cuda_ext.OP_NAMES)
def test_every_op_has_a_cuda_kernel_and_no_cpu_kernel(extension, name):
    qualified = f"{_cuda_ext.NAMESPACE}::{name}"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CUDA")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CPU")


@pytest.mark.parametrize("name", _cuda_ext.OP_NAMES)
def test_schemas_match_the_python_contract(extension, name):
    ours = getattr(_cuda_ext.ops(), name).default._schema
    contract = getattr(torch.ops.inception_core, name).default._schema  # the Python custom op
    assert _normalised(ours) == _normalised(contract)
    assert len(ours.returns) == len(contract.returns) == 0


def test_both_namespaces_work_in_one_process(extension):
    x, w, scale, shift = conv_inputs(1, 3, 4, (3, 3), (6, 6), torch.float32, "cpu")
    with inception_core.backend("torch"):
        y = conv_bn_act(x, w, scale, shift, padding=1)
    # the CPU torch backend folds scale into the weights (one oneDNN conv): fp32 rounding, not bit equality
    torch.testing.assert_close(y, conv_bn_act_ref(x, w, scale, shift, padding=1), rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="CPU"):  # the C++ op has CUDA kernels only
        _cuda_ext.ops().conv_bn_act_out(x, w, scale, shift, None, [1, 1], [1, 1], "relu", 1.0, y, 0)


def test_cuda_backend_refuses_cpu_tensors(extension):
    x, w, scale, shift = conv_inputs(1, 3, 4, (1, 1), (4, 4), torch.float32, "cpu")
    with inception_core.backend("cuda"):
        with pytest.raises(backends.BackendUnavailableError, match="backend 'cuda' cannot run conv_bn_act .*CUDA"):
            conv_bn_act(x, w, scale, shift)
        with pytest.raises(backends.BackendUnavailableError, match="backend 'cuda' cannot run max_pool2d"):
            max_pool2d(x, 3, 2)
    assert backends.backend_status("cuda", torch.device("cpu")) is not None


def test_cuda_backend_without_a_gpu_says_so():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert _cuda_ext.cuda_status(torch.device("cuda")) == "CUDA is not available (no CUDA device or driver)"
    assert _cuda_ext.load_error(compile_if_missing=False) == _cuda_ext.prebuilt_error()


def test_first_use_compile_finds_the_sources_and_headers():
    root = _cuda_ext.csrc_dir()
    assert root is not None
    names = {os.path.basename(p) for p in _csrc_build.csrc_sources(str(root))}
    assert {"ops.cpp", "ops_cuda.cpp", "conv_bn_act_simt.cu", "conv_bn_act_wmma.cu", "pool2d.cu"} <= names
    if torch.version.cuda is None or not _csrc_build.nvidia_wheel_includes():
        pytest.skip("torch is not a CUDA build with nvidia-* wheels")
    flags = _csrc_build.cxx_flags()
    include_dirs = [flags[i + 1] for i, f in enumerate(flags) if f == "-isystem"]
    assert any(os.path.exists(os.path.join(d, "cublas_v2.h")) for d in include_dirs), include_dirs


# ---------------------------------------------------------------------------------------------------
# on a GPU


def _conv_geometries():
    return [pytest.param(*args, id=label) for args, label in conv_layer_cases(CONV_SHAPES)]


def _check_conv(x, w, scale, shift, *, out=None, out_offset=0, **kw):
    """cuda backend vs the float64 reference, with the pass rule of tests/ops and `inception-core check`."""
    with inception_core.backend("cuda"):
        y = conv_bn_act(x, w, scale, shift, out=out, out_offset=out_offset, **kw)
    kw64 = {k: (v.double() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    ref = conv_bn_act_ref(x.double(), w.double(), scale.double(), shift.double(), **kw64)
    torch_err = None
    if x.dtype != torch.float32:
        with inception_core.backend("torch"):
            torch_err = rel_err(conv_bn_act(x, w, scale, shift, **kw), ref)
    err = rel_err(y, ref)
    assert passes(err, x.dtype, torch_err=torch_err, interpreted=False), (err, torch_err)
    return y


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", _conv_geometries())
def test_conv_network_geometries(gpu, c, k, kernel, stride, padding, hw, dtype, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # the fp32 reference in full fp32
    x, w, scale, shift = conv_inputs(2, c, k, kernel, hw, dtype, gpu)
    y = _check_conv(x, w, scale, shift, stride=stride, padding=padding)
    assert y.is_contiguous(memory_format=CL) and y.dtype == dtype


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_epilogue_residual_act_none_and_strided_inputs(gpu, dtype):
    x, w, scale, shift = conv_inputs(1, 37, 19, (1, 7), (9, 11), dtype, gpu, channels_last=False)  # NCHW
    residual = torch.randn(1, 19, 11, 9, device=gpu).to(dtype).transpose(2, 3)  # non-contiguous
    _check_conv(x, w, scale, shift, padding=(0, 3), residual=residual, res_scale=0.17, act="none")
    _check_conv(x[:, :, 1:, ::2], w, scale, shift, stride=(2, 1), padding=(0, 3), act="relu")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_slice_write_leaves_the_rest_untouched(gpu, dtype):
    x, w, scale, shift = conv_inputs(2, 3, 32, (3, 3), (17, 17), dtype, gpu)  # the 3-channel stem
    out = torch.full((2, 80, 8, 8), float("nan"), device=gpu, dtype=dtype).contiguous(memory_format=CL)
    y = _check_conv(x, w, scale, shift, stride=2, out=out, out_offset=40)
    assert y.data_ptr() == out[:, 40:].data_ptr()
    assert torch.isnan(out[:, :40]).all() and torch.isnan(out[:, 72:]).all()


@pytest.mark.gpu
def test_conv_empty_batch_and_nan_input(gpu):
    x, w, scale, shift = conv_inputs(0, 8, 16, (3, 3), (5, 5), torch.float16, gpu)
    with inception_core.backend("cuda"):
        assert conv_bn_act(x, w, scale, shift).shape == (0, 16, 3, 3)
    x, w, scale, shift = conv_inputs(1, 8, 16, (1, 1), (5, 5), torch.float32, gpu)
    x[0, 3, 2, 2] = float("nan")
    with inception_core.backend("cuda"):
        y = conv_bn_act(x, w, scale, shift)
    assert torch.isnan(y[0, :, 2, 2]).all() and not torch.isnan(y[0, :, 0, 0]).any()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_opcheck_on_the_cuda_backend(gpu, dtype):
    x, w, scale, shift = conv_inputs(2, 5, 6, (3, 1), (7, 6), dtype, gpu)
    out = torch.empty(2, 9, 5, 6, device=gpu, dtype=dtype).contiguous(memory_format=CL)
    with inception_core.backend("cuda"):
        torch.library.opcheck(torch.ops.inception_core.conv_bn_act.default,
                              (x, w, scale, shift, None, [1, 1], [0, 0], "relu", 1.0))
        torch.library.opcheck(torch.ops.inception_core.conv_bn_act_out.default,
                              (x, w, scale, shift, None, [1, 1], [0, 0], "none", 1.0, out, 3))
        torch.library.opcheck(torch.ops.inception_core.avg_pool2d.default, (x, [3, 3], [2, 2], [1, 1], True, False))


@pytest.mark.gpu
def test_float64_is_refused(gpu):
    x, w, scale, shift = conv_inputs(1, 4, 4, (1, 1), (3, 3), torch.float64, gpu)
    with inception_core.backend("cuda"), pytest.raises(TypeError, match="^x: float64"):
        conv_bn_act(x, w, scale, shift)


def _pool_geometries():
    return [pytest.param(*args, id=label) for args, label in pool_layer_cases(POOL_SHAPES)]


def _pool(kind, x, **kw):
    if kind == "max":
        return max_pool2d(x, **kw)
    return avg_pool2d(x, **kw)


def _pool_ref(kind, x, **kw):
    ref_dtype = torch.float64 if x.dtype == torch.float32 else torch.float32
    fn = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    return fn(x.to(ref_dtype), **kw).to(x.dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,c,kernel,stride,padding,ceil_mode,count_include_pad,hw", _pool_geometries())
def test_pool_network_geometries(gpu, kind, c, kernel, stride, padding, ceil_mode, count_include_pad, hw, dtype):
    x = torch.randn(2, c, *hw, device=gpu).to(dtype).contiguous(memory_format=CL)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if kind == "avg":
        kw["count_include_pad"] = count_include_pad
    with inception_core.backend("cuda"):
        y = _pool(kind, x, **kw)
    # max is exact; avg sums in fp32 and rounds once (fp16/bf16: one ulp of the output at most), the
    # (atol, rtol) of tests/ops/test_pool2d.py
    atol, rtol = {torch.float32: (1e-6, 1e-6), torch.float16: (1e-5, 2e-3), torch.bfloat16: (1e-5, 1e-2)}[dtype]
    if kind == "max":
        atol = rtol = 0.0
    torch.testing.assert_close(y, _pool_ref(kind, x, **kw), rtol=rtol, atol=atol, equal_nan=False)
    assert y.is_contiguous(memory_format=CL)


@pytest.mark.gpu
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [True, False])
def test_avg_pool_padding_rules_on_an_nchw_input(gpu, ceil_mode, count_include_pad):
    x = torch.randn(2, 5, 8, 10, device=gpu)  # NCHW
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    with inception_core.backend("cuda"):
        y = avg_pool2d(x, **kw)
    torch.testing.assert_close(y, _pool_ref("avg", x, **kw), rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
def test_max_pool_propagates_nan_and_writes_its_slice(gpu):
    x = torch.randn(1, 6, 7, 7, device=gpu).contiguous(memory_format=CL)
    x[0, 2, 2, 2] = float("nan")  # inside the windows of outputs (0..1, 0..1)
    out = torch.full((1, 10, 3, 3), float("nan"), device=gpu).contiguous(memory_format=CL)
    with inception_core.backend("cuda"):
        max_pool2d(x, 3, 2, out=out, out_offset=4)
    torch.testing.assert_close(out[:, 4:], torch.nn.functional.max_pool2d(x, 3, 2), rtol=0, atol=0,
                               equal_nan=True)
    assert torch.isnan(out[0, 2 + 4, :2, :2]).all() and not torch.isnan(out[0, 2 + 4, 2]).any()
    assert torch.isnan(out[:, :4]).all()


@pytest.mark.gpu
def test_cpp_checks_name_the_argument(gpu):
    x, w, scale, shift = conv_inputs(1, 4, 8, (3, 3), (5, 5), torch.float16, gpu)
    op = _cuda_ext.ops()
    out = torch.empty(1, 8, 3, 3, device=gpu, dtype=torch.float16).contiguous(memory_format=CL)
    with pytest.raises(ValueError, match="out: expected shape"):
        op.conv_bn_act_out(x, w, scale, shift, None, [1, 1], [0, 0], "relu", 1.0, out[:, :4], 0)
    with pytest.raises(ValueError, match="act: expected"):
        op.conv_bn_act_out(x, w, scale, shift, None, [1, 1], [0, 0], "gelu", 1.0, out, 0)
    with pytest.raises(TypeError, match="scale: expected dtype float32"):
        op.conv_bn_act_out(x, w, scale.half(), shift, None, [1, 1], [0, 0], "relu", 1.0, out, 0)
    with pytest.raises(TypeError, match="weight: expected x's dtype"):
        op.conv_bn_act_out(x, w.float(), scale, shift, None, [1, 1], [0, 0], "relu", 1.0, out, 0)
    with pytest.raises(ValueError, match="padding: expected at most half"):
        op.max_pool2d_out(x, [3, 3], [1, 1], [2, 2], False, out[:, :4], 0)
