"""``@triton.jit`` helpers shared by the kernels (inlined where they are called: no cost at run time).

Pixel tiles: a program's rows are flattened pixel indices ``offs`` over (N, OH, OW); ``pixel_coords``
decodes them and ``pixel_offset`` forms the element offset of (n, h, w) in a tensor addressed through
its strides (NHWC-fast, NCHW works). ``grouped_tiles`` is the grouped program order of the GEMM
kernels; ``avg_pool_divisor`` is torch's average-pool divisor, shared by the forward and the backward;
``acc_dtype`` the accumulator dtype (fp64 only for fp64 inputs).
"""

import triton
import triton.language as tl


@triton.constexpr_function
def acc_dtype(acc_fp64):
    """The accumulator / math dtype: fp64 when ``ACC_FP64``, else fp32."""
    return tl.float64 if acc_fp64 else tl.float32


@triton.jit
def pixel_coords(offs, OH, OW):
    """Flattened pixel indices (n * OH + oh) * OW + ow -> (n, oh, ow)."""
    ohw = OH * OW
    n = offs // ohw
    pix = offs % ohw
    return n, pix // OW, pix % OW


@triton.jit
def pixel_offset(n, h, w, stride_n, stride_h, stride_w):
    """Element offset of pixel (n, h, w) (channel 0) in a tensor with these strides."""
    return n * stride_n + h * stride_h + w * stride_w


@triton.jit
def grouped_tiles(pid, num_pid_m, num_pid_n, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of program ``pid`` in grouped order: GROUP_M row tiles share the column tiles
    (weights) they read while those sit in L2."""
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m
    return pid_m, pid_n


@triton.jit
def avg_pool_divisor(hstart, wstart, H, W, KH: tl.constexpr, KW: tl.constexpr, PAD_H: tl.constexpr,
                     PAD_W: tl.constexpr, COUNT_INCLUDE_PAD: tl.constexpr):
    """torch's average-pool divisor of the window starting at (hstart, wstart) (may be negative): the
    window clipped to the padded input, then (unless counting the padding) clipped to the input itself."""
    hend = tl.minimum(hstart + KH, H + PAD_H)
    wend = tl.minimum(wstart + KW, W + PAD_W)
    if COUNT_INCLUDE_PAD:
        count = (hend - hstart) * (wend - wstart)
    else:
        count = ((tl.minimum(hend, H) - tl.maximum(hstart, 0))
                 * (tl.minimum(wend, W) - tl.maximum(wstart, 0)))
    return count
