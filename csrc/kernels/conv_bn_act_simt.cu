// conv_bn_act, SIMT path: implicit GEMM in 64x64 tiles, 256 threads with 4x4 fp32 accumulators each,
// operands staged through shared memory as fp32. Every dtype and geometry; the fp32 path (no TF32)
// and the fallback where the tensor-core path does not apply. Rows and reduction indices are decomposed
// once per tile into shared tables; no cp.async pipelining or vector loads yet.

#include "conv_bn_act_common.cuh"

namespace inception_core {
namespace {

constexpr int kBlockM = 64;
constexpr int kBlockN = 64;
constexpr int kBlockK = 16;
constexpr int kThreads = 256;  // 16 x 16, each owning rows ty + 16 i and columns tx + 16 j

template <typename T>
__global__ void __launch_bounds__(kThreads) conv_bn_act_simt_kernel(const ConvBnActParams p) {
  __shared__ float a_tile[kBlockK][kBlockM + 1];
  __shared__ float b_tile[kBlockK][kBlockN + 1];
  __shared__ Im2colRow rows[kBlockM];
  __shared__ Im2colCol cols[kBlockK];

  const int tid = threadIdx.x;
  const int tx = tid % 16;
  const int ty = tid / 16;
  const int64_t num_rows = p.n * p.oh * p.ow;
  const int64_t depth = p.r * p.s * p.c;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBlockM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kBlockN;
  if (tid < kBlockM) rows[tid] = im2col_row(p, m0 + tid);

  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < depth; k0 += kBlockK) {
    if (tid < kBlockK) cols[tid] = im2col_col(p, k0 + tid);
    __syncthreads();  // rows / cols ready
    for (int e = tid; e < kBlockM * kBlockK; e += kThreads) {
      const int kk = e % kBlockK;
      const int mm = e / kBlockK;
      a_tile[kk][mm] = to_float(load_x<T>(p, rows[mm], cols[kk]));
    }
    for (int e = tid; e < kBlockN * kBlockK; e += kThreads) {
      const int kk = e % kBlockK;
      const int nn = e / kBlockK;
      b_tile[kk][nn] = to_float(load_w<T>(p, n0 + nn, cols[kk]));
    }
    __syncthreads();  // tiles ready
#pragma unroll
    for (int kk = 0; kk < kBlockK; ++kk) {
      float a[4];
      float b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = a_tile[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = b_tile[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // tiles and cols consumed before the next step overwrites them
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= num_rows) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t kout = n0 + tx + 16 * j;
      if (kout < p.k) store_epilogue<T>(p, m, kout, acc[i][j]);
    }
  }
}

}  // namespace

void launch_conv_bn_act_simt(const ConvBnActParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(cdiv(p.n * p.oh * p.ow, kBlockM)), static_cast<unsigned>(cdiv(p.k, kBlockN)));
  switch (p.dtype) {
    case DType::kFloat32:
      conv_bn_act_simt_kernel<float><<<grid, kThreads, 0, stream>>>(p);
      break;
    case DType::kFloat16:
      conv_bn_act_simt_kernel<__half><<<grid, kThreads, 0, stream>>>(p);
      break;
    case DType::kBFloat16:
      conv_bn_act_simt_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(p);
      break;
  }
}

}  // namespace inception_core
