// The kernels' per-element code (csrc/kernels/*_common.cuh) run on the CPU: conv_bn_act as the plain
// GEMM loop that the CUDA kernels tile (including the masked rows and reduction indices past the edges
// of the last tile), pool2d one output at a time. Built and compared with torch by test_host_harness.py,
// so the index arithmetic, masking, epilogue and pooling rules are checked on machines without a GPU.

#include <vector>

#include "conv_bn_act_common.cuh"
#include "pool2d_common.cuh"

using namespace inception_core;

namespace {

template <typename T>
void conv_bn_act_loop(const ConvBnActParams& p, int64_t tile_m, int64_t tile_k) {
  const int64_t rows = p.n * p.oh * p.ow;
  const int64_t depth = p.r * p.s * p.c;
  const int64_t rows_padded = (rows + tile_m - 1) / tile_m * tile_m;
  const int64_t depth_padded = (depth + tile_k - 1) / tile_k * tile_k;
  std::vector<Im2colCol> cols;
  for (int64_t kk = 0; kk < depth_padded; ++kk) cols.push_back(im2col_col(p, kk));
  for (int64_t m = 0; m < rows_padded; ++m) {
    const Im2colRow row = im2col_row(p, m);
    for (int64_t kout = 0; kout < p.k; ++kout) {
      float acc = 0.f;
      for (int64_t kk = 0; kk < depth_padded; ++kk)
        acc += to_float(load_x<T>(p, row, cols[kk])) * to_float(load_w<T>(p, kout, cols[kk]));
      if (m < rows) store_epilogue<T>(p, m, kout, acc);
    }
  }
}

}  // namespace

// geometry: n, c, h, w, k, r, s, oh, ow, stride_h, stride_w, pad_h, pad_w
// strides: x (4), w (4), residual (4), y (4), in elements; dtype: 0 float32, 1 float16, 2 bfloat16
extern "C" void conv_bn_act_host(int dtype, const void* x, const void* w, const float* scale, const float* shift,
                                 const void* residual, void* y, const int64_t* geometry, const int64_t* strides,
                                 float res_scale, int relu) {
  ConvBnActParams p{};
  p.dtype = static_cast<DType>(dtype);
  p.x = x, p.w = w, p.scale = scale, p.shift = shift, p.residual = residual, p.y = y;
  const int64_t* g = geometry;
  p.n = g[0], p.c = g[1], p.h = g[2], p.w_in = g[3], p.k = g[4], p.r = g[5], p.s = g[6], p.oh = g[7], p.ow = g[8];
  p.stride_h = g[9], p.stride_w = g[10], p.pad_h = g[11], p.pad_w = g[12];
  const int64_t* st = strides;
  p.stride_xn = st[0], p.stride_xc = st[1], p.stride_xh = st[2], p.stride_xw = st[3];
  p.stride_wk = st[4], p.stride_wc = st[5], p.stride_wr = st[6], p.stride_ws = st[7];
  p.stride_rn = st[8], p.stride_rc = st[9], p.stride_rh = st[10], p.stride_rw = st[11];
  p.stride_yn = st[12], p.stride_yc = st[13], p.stride_yh = st[14], p.stride_yw = st[15];
  p.res_scale = res_scale;
  p.relu = relu != 0;
  // the tiles of the WMMA kernel (64 rows, 32 reduction indices) and of the SIMT kernel (64, 16)
  const int64_t tile_k = p.dtype == DType::kFloat32 ? 16 : 32;
  switch (p.dtype) {
    case DType::kFloat32:
      conv_bn_act_loop<float>(p, 64, tile_k);
      break;
    case DType::kFloat16:
      conv_bn_act_loop<__half>(p, 64, tile_k);
      break;
    case DType::kBFloat16:
      conv_bn_act_loop<__nv_bfloat16>(p, 64, tile_k);
      break;
  }
}

// geometry: n, c, h, w, oh, ow, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w
// strides: x (4), y (4), in elements; float32
extern "C" void pool2d_host(const float* x, float* y, const int64_t* geometry, const int64_t* strides, int is_max,
                            int count_include_pad) {
  Pool2dParams p{};
  p.dtype = DType::kFloat32;
  p.x = x, p.y = y;
  const int64_t* g = geometry;
  p.n = g[0], p.c = g[1], p.h = g[2], p.w = g[3], p.oh = g[4], p.ow = g[5];
  p.kernel_h = g[6], p.kernel_w = g[7], p.stride_h = g[8], p.stride_w = g[9], p.pad_h = g[10], p.pad_w = g[11];
  const int64_t* st = strides;
  p.stride_xn = st[0], p.stride_xc = st[1], p.stride_xh = st[2], p.stride_xw = st[3];
  p.stride_yn = st[4], p.stride_yc = st[5], p.stride_yh = st[6], p.stride_yw = st[7];
  p.is_max = is_max != 0;
  p.count_include_pad = count_include_pad != 0;
  for (int64_t e = 0; e < p.n * p.c * p.oh * p.ow; ++e) pool2d_output<float>(p, e);
}
