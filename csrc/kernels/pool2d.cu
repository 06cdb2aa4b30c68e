// pool2d: one thread per output element, channel fastest (coalesced for NHWC), grid-stride loop with
// int64 indices. The windows of the networks are at most 3x3 (8x8 for the final average pools), so
// the window is read straight from global memory; no shared-memory staging.

#include "pool2d_common.cuh"

namespace inception_core {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;

template <typename T>
__global__ void __launch_bounds__(kThreads) pool2d_kernel(const Pool2dParams p) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    pool2d_output<T>(p, e);
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
