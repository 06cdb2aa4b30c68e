// Helpers shared by the conv_bn_act kernels: the implicit-GEMM view of the convolution and the fused
// epilogue. GEMM rows m = (n, oh, ow), columns = output channel, reduction index
// kk = (r * S + s) * C + c (channel fastest: consecutive kk read consecutive NHWC addresses).
// A row's and a reduction index's decompositions are computed once per tile (Im2colRow / Im2colCol),
// so an element load is a bounds check and one add. Host-callable too: tests/csrc/host_harness.cu runs
// them on the CPU against torch.
#pragma once

#include <cstdint>

#include "conv_bn_act.cuh"
#include "convert.cuh"

namespace inception_core {

// Output pixel m: base offset into x of its window's (0, 0) tap (may be negative: padding) and the
// window's top-left input coordinates.
struct Im2colRow {
  int64_t x_base;
  int64_t ih0;
  int64_t iw0;
  bool valid;  // m < N * OH * OW
};

// Reduction index kk = (r, s, c): its offsets into x (relative to a row's x_base) and into w (relative
// to the output channel's row of w).
struct Im2colCol {
  int64_t x_off;
  int64_t w_off;
  int64_t r;
  int64_t s;
  bool valid;  // kk < R * S * C
};

__host__ __device__ __forceinline__ Im2colRow im2col_row(const ConvBnActParams& p, int64_t m) {
  Im2colRow row{0, 0, 0, m < p.n * p.oh * p.ow};
  if (!row.valid) return row;
  const int64_t ow = m % p.ow;
  const int64_t noh = m / p.ow;
  const int64_t oh = noh % p.oh;
  const int64_t n = noh / p.oh;
  row.ih0 = oh * p.stride_h - p.pad_h;
  row.iw0 = ow * p.stride_w - p.pad_w;
  row.x_base = n * p.stride_xn + row.ih0 * p.stride_xh + row.iw0 * p.stride_xw;
  return row;
}

__host__ __device__ __forceinline__ Im2colCol im2col_col(const ConvBnActParams& p, int64_t kk) {
  Im2colCol col{0, 0, 0, 0, kk < p.r * p.s * p.c};
  if (!col.valid) return col;
  const int64_t c = kk % p.c;
  const int64_t rs = kk / p.c;
  col.s = rs % p.s;
  col.r = rs / p.s;
  col.x_off = c * p.stride_xc + col.r * p.stride_xh + col.s * p.stride_xw;
  col.w_off = c * p.stride_wc + col.r * p.stride_wr + col.s * p.stride_ws;
  return col;
}

// Element (m, kk) of the implicit im2col matrix; zero in the padding and past the edges.
template <typename T>
__host__ __device__ __forceinline__ T load_x(const ConvBnActParams& p, const Im2colRow& row, const Im2colCol& col) {
  const int64_t ih = row.ih0 + col.r;
  const int64_t iw = row.iw0 + col.s;
  if (!row.valid || !col.valid || ih < 0 || ih >= p.h || iw < 0 || iw >= p.w_in) return from_float<T>(0.f);
  return static_cast<const T*>(p.x)[row.x_base + col.x_off];
}

// Element (kk, kout) of the weight as a (R*S*C, K) matrix; zero past the edges.
template <typename T>
__host__ __device__ __forceinline__ T load_w(const ConvBnActParams& p, int64_t kout, const Im2colCol& col) {
  if (!col.valid || kout >= p.k) return from_float<T>(0.f);
  return static_cast<const T*>(p.w)[kout * p.stride_wk + col.w_off];
}

// y[m, kout] = act(residual + res_scale * (acc * scale + shift)), epilogue math in fp32.
template <typename T>
__host__ __device__ __forceinline__ void store_epilogue(const ConvBnActParams& p, int64_t m, int64_t kout, float acc) {
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
