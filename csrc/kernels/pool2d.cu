// pool2d: one thread per output element, channel fastest (coalesced for NHWC), grid-stride loop with
// int64 indices. The windows of the networks are at most 3x3 (8x8 for the final average pools), so
// the window is read straight from global memory; no shared-memory staging.

#include <math_constants.h>

#include "convert.cuh"
#include "pool2d.cuh"

namespace inception_core {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;

__host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

template <typename T>
__global__ void __launch_bounds__(kThreads) pool2d_kernel(const Pool2dParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int64_t total = p.n * p.c * p.oh * p.ow;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e % p.c;
    int64_t rest = e / p.c;
    const int64_t ow = rest % p.ow;
    rest /= p.ow;
    const int64_t oh = rest % p.oh;
    const int64_t n = rest / p.oh;

    int64_t h0 = oh * p.stride_h - p.pad_h;
    int64_t w0 = ow * p.stride_w - p.pad_w;
    int64_t h1 = min64(h0 + p.kernel_h, p.h + p.pad_h);
    int64_t w1 = min64(w0 + p.kernel_w, p.w + p.pad_w);
    const int64_t padded_count = (h1 - h0) * (w1 - w0);
    h0 = max64(h0, 0);
    w0 = max64(w0, 0);
    h1 = min64(h1, p.h);
    w1 = min64(w1, p.w);

    const T* xc = x + n * p.stride_xn + c * p.stride_xc;
    float result;
    if (p.is_max) {
      result = -CUDART_INF_F;
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
    y[n * p.stride_yn + c * p.stride_yc + oh * p.stride_yh + ow * p.stride_yw] = from_float<T>(result);
  }
}

}  // namespace

void launch_pool2d(const Pool2dParams& p, cudaStream_t stream) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  const unsigned blocks = static_cast<unsigned>(min64(cdiv(total, kThreads), kMaxBlocks));
  switch (p.dtype) {
    case DType::kFloat32:
      pool2d_kernel<float><<<blocks, kThreads, 0, stream>>>(p);
      break;
    case DType::kFloat16:
      pool2d_kernel<__half><<<blocks, kThreads, 0, stream>>>(p);
      break;
    case DType::kBFloat16:
      pool2d_kernel<__nv_bfloat16><<<blocks, kThreads, 0, stream>>>(p);
      break;
  }
}

}  // namespace inception_core
