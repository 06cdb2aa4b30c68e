// conv_bn_act, tensor-core path (fp16 / bf16, compute capability >= 8.0): implicit GEMM in 64x64x32
// tiles, 4 warps each computing a 32x32 block as 2x2 WMMA 16x16x16 fragments with fp32 accumulators;
// the accumulators go through shared memory to the fused epilogue, which stores channel-contiguous.
// Operands are gathered element by element through per-tile row / reduction-index tables (masked,
// zero-filled), so every geometry takes this path; no cp.async pipelining or vector loads yet.

#include <mma.h>

#include "conv_bn_act_common.cuh"

namespace inception_core {
namespace {

constexpr int kBlockM = 64;
constexpr int kBlockN = 64;
constexpr int kBlockK = 32;
constexpr int kThreads = 128;  // 4 warps in a 2 x 2 grid of 32 x 32 blocks
// Row pitches padded against bank conflicts; WMMA needs multiples of 8 (16-bit) / 4 (fp32) elements.
constexpr int kPitchA = kBlockK + 8;
constexpr int kPitchB = kBlockN + 8;
constexpr int kPitchC = kBlockN + 4;

template <typename T>
__global__ void __launch_bounds__(kThreads) conv_bn_act_wmma_kernel(const ConvBnActParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) T a_tile[kBlockM][kPitchA];  // (m, kk)
  __shared__ __align__(32) T b_tile[kBlockK][kPitchB];  // (kk, n)
  __shared__ __align__(32) float c_tile[kBlockM][kPitchC];
  __shared__ Im2colRow rows[kBlockM];
  __shared__ Im2colCol cols[kBlockK];

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int warp_m = (warp / 2) * 32;
  const int warp_n = (warp % 2) * 32;
  const int64_t num_rows = p.n * p.oh * p.ow;
  const int64_t depth = p.r * p.s * p.c;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBlockM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kBlockN;
  if (tid < kBlockM) rows[tid] = im2col_row(p, m0 + tid);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  for (int64_t k0 = 0; k0 < depth; k0 += kBlockK) {
    if (tid < kBlockK) cols[tid] = im2col_col(p, k0 + tid);
    __syncthreads();  // rows / cols ready
    for (int e = tid; e < kBlockM * kBlockK; e += kThreads) {
      const int kk = e % kBlockK;
      const int mm = e / kBlockK;
      a_tile[mm][kk] = load_x<T>(p, rows[mm], cols[kk]);
    }
    for (int e = tid; e < kBlockN * kBlockK; e += kThreads) {
      const int kk = e % kBlockK;
      const int nn = e / kBlockK;
      b_tile[kk][nn] = load_w<T>(p, n0 + nn, cols[kk]);
    }
    __syncthreads();  // tiles ready
#pragma unroll
    for (int kk = 0; kk < kBlockK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &a_tile[warp_m + 16 * i][kk], kPitchA);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &b_tile[kk][warp_n + 16 * j], kPitchB);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // tiles and cols consumed before the next step overwrites them
  }

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&c_tile[warp_m + 16 * i][warp_n + 16 * j], acc[i][j], kPitchC, wmma::mem_row_major);
  __syncthreads();

  for (int e = tid; e < kBlockM * kBlockN; e += kThreads) {
    const int nn = e % kBlockN;
    const int mm = e / kBlockN;
    const int64_t m = m0 + mm;
    const int64_t kout = n0 + nn;
    if (m < num_rows && kout < p.k) store_epilogue<T>(p, m, kout, c_tile[mm][nn]);
  }
#else
  __trap();  // the host launches this kernel only on compute capability >= 8.0
#endif
}

}  // namespace

void launch_conv_bn_act_wmma(const ConvBnActParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(cdiv(p.n * p.oh * p.ow, kBlockM)), static_cast<unsigned>(cdiv(p.k, kBlockN)));
  switch (p.dtype) {
    case DType::kFloat16:
      conv_bn_act_wmma_kernel<__half><<<grid, kThreads, 0, stream>>>(p);
      break;
    case DType::kBFloat16:
      conv_bn_act_wmma_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(p);
      break;
    case DType::kFloat32:
      break;  // not a tensor-core dtype here: the binding routes fp32 to the SIMT path
  }
}

}  // namespace inception_core
