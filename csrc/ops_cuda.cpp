// CUDA implementations of the inception_core_cuda ops (schemas: ops.cpp). Each op checks its inputs
// (messages name the argument), guards x's device, returns early when there is nothing to write, and
// launches one kernel from kernels/ on the current stream, checked right after the launch.

#include <optional>
#include <string>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "kernels/conv_bn_act.cuh"
#include "kernels/pool2d.cuh"

namespace inception_core {
namespace {

DType dtype_of(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DType::kFloat32;
    case at::kHalf:
      return DType::kFloat16;
    case at::kBFloat16:
      return DType::kBFloat16;
    default:
      TORCH_CHECK_TYPE(false, name, ": expected dtype float32, float16 or bfloat16 (the cuda backend), got ",
                       t.scalar_type());
  }
  return DType::kFloat32;  // not reached: TORCH_CHECK_TYPE throws
}

void check_cuda_4d(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.defined(), name, ": expected a tensor, got an undefined one");
  TORCH_CHECK_VALUE(t.is_cuda(), name, ": expected a CUDA tensor, got one on ", t.device());
  TORCH_CHECK_VALUE(t.dim() == 4, name, ": expected a 4-D tensor (N, C, H, W), got shape ", t.sizes());
}

void check_like_x(const at::Tensor& t, const char* name, const at::Tensor& x) {
  check_cuda_4d(t, name);
  TORCH_CHECK_VALUE(t.device() == x.device(), name, ": expected a tensor on x's device ", x.device(), ", got ",
                    t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), name, ": expected x's dtype ", x.scalar_type(), ", got ",
                   t.scalar_type());
}

std::pair<int64_t, int64_t> pair_arg(at::IntArrayRef v, const char* name, int64_t minimum) {
  TORCH_CHECK_VALUE(v.size() == 2, name, ": expected 2 values (h, w), got ", v);
  TORCH_CHECK_VALUE(v[0] >= minimum && v[1] >= minimum, name, ": expected values >= ", minimum, ", got ", v);
  return {v[0], v[1]};
}

// nullptr for an absent vector; else a (k,) float32 vector on x's device, made contiguous in `keep`.
const float* channel_vector(const std::optional<at::Tensor>& t, const char* name, int64_t k, const at::Tensor& x,
                            at::Tensor& keep) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == k, name, ": expected shape (", k,
                    ",) (one value per output channel), got ", t->sizes());
  TORCH_CHECK_TYPE(t->scalar_type() == at::kFloat, name, ": expected dtype float32, got ", t->scalar_type());
  TORCH_CHECK_VALUE(t->device() == x.device(), name, ": expected a tensor on x's device ", x.device(), ", got ",
                    t->device());
  keep = t->contiguous();
  return keep.const_data_ptr<float>();
}

// The channel slice [out_offset, out_offset + channels) of out, checked against the result's shape.
at::Tensor output_slice(const at::Tensor& out, int64_t out_offset, const at::Tensor& x, int64_t n, int64_t channels,
                        int64_t oh, int64_t ow) {
  check_like_x(out, "out", x);
  TORCH_CHECK_VALUE(out_offset >= 0, "out_offset: expected an int >= 0, got ", out_offset);
  TORCH_CHECK_VALUE(out.size(0) == n && out.size(1) >= out_offset + channels && out.size(2) == oh && out.size(3) == ow,
                    "out: expected shape (", n, ", >= ", out_offset + channels, ", ", oh, ", ", ow,
                    ") to take channels [", out_offset, ", ", out_offset + channels, ") of the result, got ",
                    out.sizes());
  return out.narrow(1, out_offset, channels);
}

void conv_bn_act_out_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& scale,
                          const std::optional<at::Tensor>& shift, const std::optional<at::Tensor>& residual,
                          at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view act, double res_scale,
                          const at::Tensor& out, int64_t out_offset) {
  check_cuda_4d(x, "x");
  const DType dtype = dtype_of(x, "x");
  check_like_x(weight, "weight", x);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t k = weight.size(0), r = weight.size(2), s = weight.size(3);
  TORCH_CHECK_VALUE(weight.size(1) == c, "weight: expected ", c, " input channels (x has shape ", x.sizes(),
                    "), got weight of shape ", weight.sizes());
  TORCH_CHECK_VALUE(k > 0 && r > 0 && s > 0, "weight: expected non-empty (K, C, R, S), got ", weight.sizes());
  const auto [stride_h, stride_w] = pair_arg(stride, "stride", 1);
  const auto [pad_h, pad_w] = pair_arg(padding, "padding", 0);
  TORCH_CHECK_VALUE(act == "relu" || act == "none", "act: expected 'relu' or 'none', got '", std::string(act), "'");
  TORCH_CHECK_VALUE(h + 2 * pad_h >= r && w + 2 * pad_w >= s, "x: spatial size (", h, ", ", w, ") with padding (",
                    pad_h, ", ", pad_w, ") is smaller than the kernel (", r, ", ", s, ")");
  const int64_t oh = (h + 2 * pad_h - r) / stride_h + 1;
  const int64_t ow = (w + 2 * pad_w - s) / stride_w + 1;
  at::Tensor scale_keep, shift_keep;
  const float* scale_ptr = channel_vector(scale, "scale", k, x, scale_keep);
  const float* shift_ptr = channel_vector(shift, "shift", k, x, shift_keep);
  const bool has_residual = residual.has_value() && residual->defined();
  if (has_residual) {
    check_like_x(*residual, "residual", x);
    TORCH_CHECK_VALUE(residual->sizes() == at::IntArrayRef({n, k, oh, ow}), "residual: expected shape (", n, ", ",
                      k, ", ", oh, ", ", ow, ") (the result's), got ", residual->sizes());
  }
  const at::Tensor y = output_slice(out, out_offset, x, n, k, oh, ow);

  const c10::cuda::CUDAGuard device_guard(x.device());
  if (y.numel() == 0) return;
  ConvBnActParams p{};
  p.dtype = dtype;
  p.x = x.const_data_ptr();
  p.w = weight.const_data_ptr();
  p.scale = scale_ptr;
  p.shift = shift_ptr;
  p.residual = has_residual ? residual->const_data_ptr() : nullptr;
  p.y = y.data_ptr();
  p.n = n, p.c = c, p.h = h, p.w_in = w, p.k = k, p.r = r, p.s = s, p.oh = oh, p.ow = ow;
  p.stride_h = stride_h, p.stride_w = stride_w, p.pad_h = pad_h, p.pad_w = pad_w;
  p.stride_xn = x.stride(0), p.stride_xc = x.stride(1), p.stride_xh = x.stride(2), p.stride_xw = x.stride(3);
  p.stride_wk = weight.stride(0), p.stride_wc = weight.stride(1), p.stride_wr = weight.stride(2),
  p.stride_ws = weight.stride(3);
  if (has_residual) {
    p.stride_rn = residual->stride(0), p.stride_rc = residual->stride(1), p.stride_rh = residual->stride(2),
    p.stride_rw = residual->stride(3);
  }
  p.stride_yn = y.stride(0), p.stride_yc = y.stride(1), p.stride_yh = y.stride(2), p.stride_yw = y.stride(3);
  p.res_scale = static_cast<float>(res_scale);
  p.relu = act == "relu";

  const cudaStream_t stream = at::cuda::getCurrentCUDAStream(x.device().index());
  const bool tensor_cores = dtype != DType::kFloat32 && at::cuda::getDeviceProperties(x.device().index())->major >= 8;
  if (tensor_cores) {
    launch_conv_bn_act_wmma(p, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  } else {
    launch_conv_bn_act_simt(p, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

// torch's pooling output size (dilation 1): with ceil_mode the last window must start inside the
// input or its left padding.
int64_t pool_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
  int64_t out = (size + 2 * pad - kernel + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= size + pad) --out;
  return out;
}

void pool2d_out_cuda(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                     at::IntArrayRef padding, bool ceil_mode, bool is_max, bool count_include_pad,
                     const at::Tensor& out, int64_t out_offset) {
  check_cuda_4d(x, "x");
  const DType dtype = dtype_of(x, "x");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  TORCH_CHECK_VALUE(c > 0 && h > 0 && w > 0, "x: expected non-zero channels and spatial size, got shape ",
                    x.sizes());
  const auto [kernel_h, kernel_w] = pair_arg(kernel_size, "kernel_size", 1);
  const auto [stride_h, stride_w] = pair_arg(stride, "stride", 1);
  const auto [pad_h, pad_w] = pair_arg(padding, "padding", 0);
  TORCH_CHECK_VALUE(pad_h <= kernel_h / 2 && pad_w <= kernel_w / 2,
                    "padding: expected at most half the kernel size (", kernel_h, ", ", kernel_w, "), got ", padding);
  const int64_t oh = pool_output_size(h, kernel_h, stride_h, pad_h, ceil_mode);
  const int64_t ow = pool_output_size(w, kernel_w, stride_w, pad_w, ceil_mode);
  TORCH_CHECK_VALUE(oh >= 1 && ow >= 1, "x: spatial size (", h, ", ", w, ") is too small for kernel_size ",
                    kernel_size, ", stride ", stride, ", padding ", padding);
  const at::Tensor y = output_slice(out, out_offset, x, n, c, oh, ow);

  const c10::cuda::CUDAGuard device_guard(x.device());
  if (y.numel() == 0) return;
  Pool2dParams p{};
  p.dtype = dtype;
  p.x = x.const_data_ptr();
  p.y = y.data_ptr();
  p.n = n, p.c = c, p.h = h, p.w = w, p.oh = oh, p.ow = ow;
  p.kernel_h = kernel_h, p.kernel_w = kernel_w, p.stride_h = stride_h, p.stride_w = stride_w;
  p.pad_h = pad_h, p.pad_w = pad_w;
  p.stride_xn = x.stride(0), p.stride_xc = x.stride(1), p.stride_xh = x.stride(2), p.stride_xw = x.stride(3);
  p.stride_yn = y.stride(0), p.stride_yc = y.stride(1), p.stride_yh = y.stride(2), p.stride_yw = y.stride(3);
  p.is_max = is_max;
  p.count_include_pad = count_include_pad;

  launch_pool2d(p, at::cuda::getCurrentCUDAStream(x.device().index()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void max_pool2d_out_cuda(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                         at::IntArrayRef padding, bool ceil_mode, const at::Tensor& out, int64_t out_offset) {
  pool2d_out_cuda(x, kernel_size, stride, padding, ceil_mode, /*is_max=*/true, /*count_include_pad=*/true, out,
                  out_offset);
}

void avg_pool2d_out_cuda(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                         at::IntArrayRef padding, bool ceil_mode, bool count_include_pad, const at::Tensor& out,
                         int64_t out_offset) {
  pool2d_out_cuda(x, kernel_size, stride, padding, ceil_mode, /*is_max=*/false, count_include_pad, out, out_offset);
}

}  // namespace

TORCH_LIBRARY_IMPL(inception_core_cuda, CUDA, m) {
  m.impl("conv_bn_act_out", &conv_bn_act_out_cuda);
  m.impl("max_pool2d_out", &max_pool2d_out_cuda);
  m.impl("avg_pool2d_out", &avg_pool2d_out_cuda);
}

}  // namespace inception_core
