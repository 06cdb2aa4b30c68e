// Schemas of the cuda backend's ops. They are the slice-writing contracts of inception_core/ops/
// (conv_bn_act_out, max_pool2d_out, avg_pool2d_out): same argument names, order and types. They live
// in their own namespace because the public ops of the same names in `inception_core` are Python
// custom ops, which dispatch to these when the backend is "cuda".
// Implementations: ops_cuda.cpp (TORCH_LIBRARY_IMPL(inception_core_cuda, CUDA, m)).

#include <torch/library.h>

TORCH_LIBRARY(inception_core_cuda, m) {
  m.def(
      "conv_bn_act_out(Tensor x, Tensor weight, Tensor? scale, Tensor? shift, Tensor? residual, int[] stride, "
      "int[] padding, str act, float res_scale, Tensor(a!) out, int out_offset) -> ()");
  m.def(
      "max_pool2d_out(Tensor x, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, Tensor(a!) out, "
      "int out_offset) -> ()");
  m.def(
      "avg_pool2d_out(Tensor x, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, "
      "bool count_include_pad, Tensor(a!) out, int out_offset) -> ()");
}
