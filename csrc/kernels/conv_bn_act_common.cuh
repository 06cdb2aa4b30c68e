// Device helpers shared by the conv_bn_act kernels: the implicit-GEMM view of the convolution and
// the fused epilogue. GEMM rows m = (n, oh, ow), columns = output channel, reduction index
// kk = (r * S + s) * C + c (channel fastest: consecutive kk read consecutive NHWC addresses).
#pragma once

#include <cstdint>

#include "conv_bn_act.cuh"
#include "convert.cuh"

namespace inception_core {

// Element (m, kk) of the implicit im2col matrix; zero in the padding and past the edges.
template <typename T>
__device__ __forceinline__ T load_im2col(const ConvBnActParams& p, int64_t m, int64_t kk, int64_t rows,
                                         int64_t depth) {
  if (m >= rows || kk >= depth) return from_float<T>(0.f);
  const int64_t ow = m % p.ow;
  const int64_t noh = m / p.ow;
  const int64_t oh = noh % p.oh;
  const int64_t n = noh / p.oh;
  const int64_t c = kk % p.c;
  const int64_t rs = kk / p.c;
  const int64_t s = rs % p.s;
  const int64_t r = rs / p.s;
  const int64_t ih = oh * p.stride_h - p.pad_h + r;
  const int64_t iw = ow * p.stride_w - p.pad_w + s;
  if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w_in) return from_float<T>(0.f);
  const T* x = static_cast<const T*>(p.x);
  return x[n * p.stride_xn + c * p.stride_xc + ih * p.stride_xh + iw * p.stride_xw];
}

// Element (kk, kout) of the weight as a (R*S*C, K) matrix; zero past the edges.
template <typename T>
__device__ __forceinline__ T load_weight(const ConvBnActParams& p, int64_t kk, int64_t kout, int64_t depth) {
  if (kk >= depth || kout >= p.k) return from_float<T>(0.f);
  const int64_t c = kk % p.c;
  const int64_t rs = kk / p.c;
  const int64_t s = rs % p.s;
  const int64_t r = rs / p.s;
  const T* w = static_cast<const T*>(p.w);
  return w[kout * p.stride_wk + c * p.stride_wc + r * p.stride_wr + s * p.stride_ws];
}

// y[m, kout] = act(residual + res_scale * (acc * scale + shift)), epilogue math in fp32.
template <typename T>
__device__ __forceinline__ void store_epilogue(const ConvBnActParams& p, int64_t m, int64_t kout, float acc) {
  const int64_t ow = m % p.ow;
  const int64_t noh = m / p.ow;
  const int64_t oh = noh % p.oh;
  const int64_t n = noh / p.oh;
  float v = acc;
  if (p.scale != nullptr) v *= p.scale[kout];
  if (p.shift != nullptr) v += p.shift[kout];
  if (p.residual != nullptr) {
    const T* res = static_cast<const T*>(p.residual);
    v = to_float(res[n * p.stride_rn + kout * p.stride_rc + oh * p.stride_rh + ow * p.stride_rw]) + p.res_scale * v;
  }
  // fmaxf(NaN, 0) is 0; keep NaN as torch.relu does.
  if (p.relu) v = (v > 0.f || v != v) ? v : 0.f;
  T* y = static_cast<T*>(p.y);
  y[n * p.stride_yn + kout * p.stride_yc + oh * p.stride_yh + ow * p.stride_yw] = from_float<T>(v);
}

}  // namespace inception_core
