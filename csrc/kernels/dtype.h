// Element types the kernels take (plain C++: included by the binding and by the kernels).
#pragma once

namespace inception_core {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

}  // namespace inception_core
