// conv_bn_act launcher interface: plain C++ (no torch headers), included by the .cu kernels and by
// the binding in ../ops_cuda.cpp. Tensors are described by data pointer + sizes + element strides,
// so NHWC, NCHW and channel-slice views all work without a copy.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "dtype.h"

namespace inception_core {

// y = act(residual + res_scale * (conv2d(x, w) * scale + shift)), written through y's strides.
// x: (n, c, h, w); w: (k, c, r, s); residual, y: (n, k, oh, ow); scale, shift: (k,) fp32, contiguous.
struct ConvBnActParams {
  DType dtype;  // of x, w, residual and y
  const void* x;
  const void* w;
  const float* scale;     // nullptr: 1
  const float* shift;     // nullptr: 0
  const void* residual;   // nullptr: no residual
  void* y;
  int64_t n, c, h, w_in, k, r, s, oh, ow;
  int64_t stride_h, stride_w, pad_h, pad_w;
  int64_t stride_xn, stride_xc, stride_xh, stride_xw;
  int64_t stride_wk, stride_wc, stride_wr, stride_ws;
  int64_t stride_rn, stride_rc, stride_rh, stride_rw;
  int64_t stride_yn, stride_yc, stride_yh, stride_yw;
  float res_scale;
  bool relu;
};

// Exactly one kernel launch each; the caller checks the launch (C10_CUDA_KERNEL_LAUNCH_CHECK).
// SIMT tiles with fp32 FMA: every dtype, every device.
void launch_conv_bn_act_simt(const ConvBnActParams& p, cudaStream_t stream);
// Tensor cores (WMMA 16x16x16, fp32 accumulation): fp16 and bf16 on compute capability >= 8.0.
void launch_conv_bn_act_wmma(const ConvBnActParams& p, cudaStream_t stream);

}  // namespace inception_core
