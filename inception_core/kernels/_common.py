"""``@triton.jit`` helpers shared by the kernels (inlined where they are called: no cost at run time).

Tiles: ``tile_offsets`` gives a program's row and column offsets and masks (rows in int64 when
``USE_INT64``), ``pixel_count`` the row count N*H*W of a pixel-row problem; the GEMM kernels find their
tile with ``grouped_tiles`` (grouped program order), the per-pixel kernels (BatchNorm, pooling) theirs
with ``pixel_channel_tile``. Pixel rows: a tile's rows are flattened pixel indices over (N, OH, OW); ``pixel_coords``
decodes them, ``pixel_offset`` forms the element offset of (n, h, w) in a tensor addressed through its
strides (NHWC-fast, NCHW works) and ``pixel_tile_ptrs`` the pointers of a (pixels x channels) tile.
``window_origin`` is the top-left input tap of a conv / pool window, ``window_tap`` the input under
one tap of the pooling windows; ``dot_acc`` one ``tl.dot`` step of
the conv GEMMs; ``avg_pool_divisor`` torch's average-pool divisor, shared by the forward and the
backward; ``acc_dtype`` the accumulator dtype (fp64 only for fp64 inputs).
"""

import triton
import triton.language as tl


@triton.constexpr_function
def acc_dtype(acc_fp64):
    """The accumulator / math dtype: fp64 when ``ACC_FP64``, else fp32."""
    return tl.float64 if acc_fp64 else tl.float32


@triton.jit
def tile_offsets(pid_m, pid_n, M, N, USE_INT64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """(offs_m, offs_n, mask_m, mask_n) of tile (pid_m, pid_n) of an M x N problem in BLOCK_M x BLOCK_N
    tiles; the rows in int64 when ``USE_INT64`` (pixel offsets into >= 2**31-element tensors)."""
    if USE_INT64:
        pid_m = pid_m.to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    return offs_m, offs_n, offs_m < M, offs_n < N


@triton.jit
def pixel_count(N, H, W, USE_INT64: tl.constexpr):
    """N * H * W, in int64 when ``USE_INT64`` (``tl.cast``: N may be the constant 1 Triton specializes)."""
    if USE_INT64:
        count = tl.cast(N, tl.int64) * H * W
    else:
        count = N * H * W
    return count


@triton.jit
def pixel_channel_tile(N, H, W, C, USE_INT64: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """(offs_p, offs_c, mask_p, mask_c) of program (program_id(0), program_id(1)) over the
    (N*H*W pixels) x (C channels) grid of the per-pixel kernels."""
    return tile_offsets(tl.program_id(0), tl.program_id(1), pixel_count(N, H, W, USE_INT64), C, USE_INT64,
                        BLOCK_P, BLOCK_C)


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
def pixel_tile_ptrs(ptr, n, h, w, offs_c, stride_n, stride_c, stride_h, stride_w):
    """Pointers of the (pixels x channels) tile at pixels (n, h, w) and channels ``offs_c`` of a tensor
    with these strides."""
    return ptr + pixel_offset(n, h, w, stride_n, stride_h, stride_w)[:, None] + offs_c[None, :] * stride_c


@triton.jit
def window_origin(oh, ow, STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr, PAD_H: tl.constexpr,
                  PAD_W: tl.constexpr):
    """(h, w) of the top-left tap of output pixel (oh, ow)'s window (negative inside the padding)."""
    return oh * STRIDE_H - PAD_H, ow * STRIDE_W - PAD_W


@triton.jit
def window_tap(x_win, hstart, wstart, kh: tl.constexpr, kw: tl.constexpr, H, W, mask_p, x_ch, mask_c,
               stride_xh, stride_xw):
    """Tap (kh, kw) of the pooling windows whose top-left taps are at (hstart, wstart) and pointers
    ``x_win``: the (pixels x channels) input tile there (0 outside the input; ``x_ch`` the channels'
    element offsets) and, per pixel, whether the tap lies inside the input."""
    ih = hstart + kh
    iw = wstart + kw
    ok = mask_p & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
    v = tl.load(x_win[:, None] + (kh * stride_xh + kw * stride_xw) + x_ch[None, :],
                mask=ok[:, None] & mask_c[None, :], other=0.0)
    return v, ok


@triton.jit
def dot_acc(a, b, acc, INPUT_PRECISION: tl.constexpr, DOT_FP32: tl.constexpr):
    """acc + a @ b; the operands cast to fp32 first when ``DOT_FP32`` (bf16 under the interpreter)."""
    if DOT_FP32:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return tl.dot(a, b, acc, input_precision=INPUT_PRECISION)


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
