// pool2d launcher interface: plain C++ (no torch headers). Tensors by data pointer + sizes + element
// strides, so NHWC, NCHW and channel-slice views work without a copy.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "dtype.h"

namespace inception_core {

// Max or average pooling of x (n, c, h, w) into y (n, c, oh, ow); y's shape carries ceil_mode.
// Max: padding counts as -inf, NaN propagates. Average: fp32 sum divided by the window clipped to
// the padded input (count_include_pad) or to the input itself, as torch.nn.functional.avg_pool2d.
struct Pool2dParams {
  DType dtype;
  const void* x;
  void* y;
  int64_t n, c, h, w, oh, ow;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int64_t stride_xn, stride_xc, stride_xh, stride_xw;
  int64_t stride_yn, stride_yc, stride_yh, stride_yw;
  bool is_max;
  bool count_include_pad;
};

// Exactly one kernel launch; the caller checks the launch (C10_CUDA_KERNEL_LAUNCH_CHECK).
void launch_pool2d(const Pool2dParams& p, cudaStream_t stream);

}  // namespace inception_core
