// One output element of pool2d, host-callable too (tests/csrc/host_harness.cu runs it on the CPU
// against torch). Element index e runs channel fastest: e = ((n * OH + oh) * OW + ow) * C + c.
#pragma once

#include <cmath>
#include <cstdint>

#include "convert.cuh"
#include "pool2d.cuh"

namespace inception_core {

__host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

template <typename T>
__host__ __device__ __forceinline__ void pool2d_output(const Pool2dParams& p, int64_t e) {
  const int64_t c = e % p.c;
  int64_t rest = e / p.c;
  const int64_t ow = rest % p.ow;
  rest /= p.ow;
  const int64_t oh = rest % p.oh;
  const int64_t n = rest / p.oh;

  // torch's window rule: clipped to the padded input for the count_include_pad divisor, then to the input
  int64_t h0 = oh * p.stride_h - p.pad_h;
  int64_t w0 = ow * p.stride_w - p.pad_w;
  int64_t h1 = min64(h0 + p.kernel_h, p.h + p.pad_h);
  int64_t w1 = min64(w0 + p.kernel_w, p.w + p.pad_w);
  const int64_t padded_count = (h1 - h0) * (w1 - w0);
  h0 = max64(h0, 0);
  w0 = max64(w0, 0);
  h1 = min64(h1, p.h);
  w1 = min64(w1, p.w);

  const T* xc = static_cast<const T*>(p.x) + n * p.stride_xn + c * p.stride_xc;
  float result;
  if (p.is_max) {
    result = -INFINITY;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) {
        const float v = to_float(xc[ih * p.stride_xh + iw * p.stride_xw]);
        if (v > result || v != v) result = v;  // NaN propagates and then sticks, as in torch
      }
  } else {
    float sum = 0.f;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) sum += to_float(xc[ih * p.stride_xh + iw * p.stride_xw]);
    const int64_t count = p.count_include_pad ? padded_count : (h1 - h0) * (w1 - w0);
    result = (h0 >= h1 || w0 >= w1) ? 0.f : sum / static_cast<float>(count);
  }
  T* y = static_cast<T*>(p.y);
  y[n * p.stride_yn + c * p.stride_yc + oh * p.stride_yh + ow * p.stride_yw] = from_float<T>(result);
}

}  // namespace inception_core
