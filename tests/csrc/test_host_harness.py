"""The cuda backend's per-element code on the CPU, against torch.

tests/csrc/host_harness.cu runs the helpers that the CUDA kernels are built from
(csrc/kernels/conv_bn_act_common.cuh: im2col rows and reduction indices, masked loads, the fused
epilogue; csrc/kernels/pool2d_common.cuh: one pooled output) as the plain loops the kernels tile, on the
CPU. Compiled here with nvcc (a few seconds), it checks the index arithmetic, masking, strides, slice
writes, epilogue and torch's pooling rules over every conv and pool geometry of the six networks on
machines without a GPU. What it cannot check: the kernels' thread mapping, shared memory and tensor-core
fragments (the GPU tests in test_extension.py do).
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from inception_core.ops import avg_pool2d_ref, conv_bn_act_ref, max_pool2d_ref
from inception_core.ops.conv_bn_act import conv_output_size
from inception_core.ops.pool2d import pool_output_size
from inception_core.shapes import CONV_SHAPES, POOL_SHAPES
from inception_core.testing import conv_inputs, conv_layer_cases, passes, pool_layer_cases, rel_err

ROOT = Path(__file__).resolve().parents[2]
CL = torch.channels_last
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
# torch builds the .cu files with these; the harness sees the headers the same way
NVCC_DEFINES = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__", "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
                "-D__CUDA_NO_HALF2_OPERATORS__"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    lib = tmp_path_factory.mktemp("host_harness") / "libhost_harness.so"
    cmd = [nvcc, "-O2", "-shared", "-Xcompiler", "-fPIC", *NVCC_DEFINES, "-I", str(ROOT / "csrc" / "kernels"),
           str(Path(__file__).with_name("host_harness.cu")), "-o", str(lib)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return ctypes.CDLL(str(lib))


def _ptr(t):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _int64s(values):
    return (ctypes.c_int64 * len(values))(*values)


def host_conv(lib, x, w, scale, shift, *, stride, padding, act="relu", residual=None, res_scale=1.0, y=None):
    """conv_bn_act through the harness, into ``y`` (any strides) or a new channels_last tensor."""
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    oh, ow = conv_output_size((h, wd), (r, s), stride, padding)
    if y is None:
        y = torch.full((n, k, oh, ow), float("nan"), dtype=x.dtype).contiguous(memory_format=CL)
    res_strides = residual.stride() if residual is not None else (0, 0, 0, 0)
    lib.conv_bn_act_host(
        DTYPE_CODES[x.dtype], _ptr(x), _ptr(w), _ptr(scale), _ptr(shift), _ptr(residual), _ptr(y),
        _int64s([n, c, h, wd, k, r, s, oh, ow, *stride, *padding]),
        _int64s([*x.stride(), *w.stride(), *res_strides, *y.stride()]), ctypes.c_float(res_scale),
        int(act == "relu"))
    return y


def host_pool(lib, x, kernel, stride, padding, ceil_mode, is_max, count_include_pad=True, y=None):
    n, c, h, w = x.shape
    oh, ow = pool_output_size((h, w), kernel, stride, padding, ceil_mode)
    if y is None:
        y = torch.full((n, c, oh, ow), float("nan")).contiguous(memory_format=CL)
    lib.pool2d_host(_ptr(x), _ptr(y), _int64s([n, c, h, w, oh, ow, *kernel, *stride, *padding]),
                    _int64s([*x.stride(), *y.stride()]), int(is_max), int(count_include_pad))
    return y


def _check_conv(lib, x, w, scale, shift, **kw):
    y = host_conv(lib, x, w, scale, shift, **kw)
    kw64 = {k: (v.double() if isinstance(v, torch.Tensor) else v) for k, v in kw.items() if k != "y"}
    ref = conv_bn_act_ref(x.double(), w.double(), scale.double(), shift.double(), **kw64)
    torch_err = None
    if x.dtype != torch.float32:
        kw_native = {k: v for k, v in kw.items() if k != "y"}
        torch_err = rel_err(conv_bn_act_ref(x, w, scale, shift, **kw_native), ref)
    err = rel_err(y, ref)
    assert passes(err, x.dtype, torch_err=torch_err, interpreted=True), (err, torch_err)
    return y


def _conv_geometries():
    return [pytest.param(*args, id=label) for args, label in conv_layer_cases(CONV_SHAPES)]


@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", _conv_geometries())
def test_conv_network_geometries(harness, c, k, kernel, stride, padding, hw):
    x, w, scale, shift = conv_inputs(1, c, k, kernel, hw, torch.float32, "cpu")
    _check_conv(harness, x, w, scale, shift, stride=stride, padding=padding)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", [
    pytest.param(3, 32, (3, 3), (2, 2), (0, 0), (11, 11), id="stem 3-channel 3x3 s2"),
    pytest.param(160, 96, (7, 1), (1, 1), (3, 0), (9, 7), id="7x1 same"),
    pytest.param(1088, 128, (1, 1), (1, 1), (0, 0), (5, 5), id="1x1 wide"),
])
def test_conv_low_precision(harness, c, k, kernel, stride, padding, hw, dtype):
    x, w, scale, shift = conv_inputs(2, c, k, kernel, hw, dtype, "cpu")
    _check_conv(harness, x, w, scale, shift, stride=stride, padding=padding)


def test_conv_epilogue_strided_inputs_and_slice_write(harness):
    x, w, scale, shift = conv_inputs(2, 37, 19, (1, 7), (9, 11), torch.float32, "cpu", channels_last=False)
    residual = torch.randn(2, 19, 11, 9).transpose(2, 3)  # non-contiguous (2, 19, 9, 11)
    _check_conv(harness, x, w, scale, shift, stride=(1, 1), padding=(0, 3), residual=residual, res_scale=0.17,
                act="none")
    _check_conv(harness, x[:, :, 1:, ::2], w, scale, shift, stride=(2, 1), padding=(0, 3))
    out = torch.full((2, 50, 9, 11), float("nan")).contiguous(memory_format=CL)
    y = out.narrow(1, 20, 19)
    _check_conv(harness, x, w, scale, shift, stride=(1, 1), padding=(0, 3), y=y)
    assert torch.isnan(out[:, :20]).all() and torch.isnan(out[:, 39:]).all()


def test_conv_nan_stays_nan_through_relu(harness):
    x, w, scale, shift = conv_inputs(1, 8, 4, (1, 1), (3, 3), torch.float32, "cpu")
    x[0, 2, 1, 1] = float("nan")
    y = host_conv(harness, x, w, scale, shift, stride=(1, 1), padding=(0, 0))
    assert torch.isnan(y[0, :, 1, 1]).all() and not torch.isnan(y[0, :, 0, 0]).any()


def _pool_geometries():
    return [pytest.param(*args, id=label) for args, label in pool_layer_cases(POOL_SHAPES)]


def _pool_ref(is_max, x, kernel, stride, padding, ceil_mode, count_include_pad):
    if is_max:
        return max_pool2d_ref(x, kernel, stride, padding, ceil_mode)
    return avg_pool2d_ref(x.double(), kernel, stride, padding, ceil_mode, count_include_pad).float()


@pytest.mark.parametrize("kind,c,kernel,stride,padding,ceil_mode,count_include_pad,hw", _pool_geometries())
def test_pool_network_geometries(harness, kind, c, kernel, stride, padding, ceil_mode, count_include_pad, hw):
    x = torch.randn(2, c, *hw).contiguous(memory_format=CL)
    args = (kernel, stride, padding, ceil_mode, kind == "max", count_include_pad)
    y = host_pool(harness, x, *args)
    tol = 0.0 if kind == "max" else 1e-6
    torch.testing.assert_close(y, _pool_ref(kind == "max", x, *args[:4], count_include_pad), rtol=tol, atol=tol)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [True, False])
@pytest.mark.parametrize("is_max", [True, False], ids=["max", "avg"])
def test_pool_padding_rules_nchw_and_slice_write(harness, is_max, ceil_mode, count_include_pad):
    x = torch.randn(2, 5, 8, 10)  # NCHW
    x[1, 3, 4, 4] = float("nan")
    out = torch.full((2, 9, 5, 6) if ceil_mode else (2, 9, 4, 5), float("nan")).contiguous(memory_format=CL)
    out[:, :2] = 7.0
    y = out.narrow(1, 2, 5)
    host_pool(harness, x, (3, 3), (2, 2), (1, 1), ceil_mode, is_max, count_include_pad, y=y)
    ref = _pool_ref(is_max, x, (3, 3), (2, 2), (1, 1), ceil_mode, count_include_pad)
    torch.testing.assert_close(y, ref, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert torch.isnan(y[1, 3]).any() and (out[:, :2] == 7.0).all() and torch.isnan(out[:, 7:]).all()
