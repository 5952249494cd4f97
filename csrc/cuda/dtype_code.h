// The storage-dtype code (DType, csrc/common/dispatch.h) of a tensor dtype, for the CUDA
// launchers, which see raw pointers only. Host code of the registration files (torch headers).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include "../common/dispatch.h"

namespace alae_fast {

// TypeError "<op>: unsupported dtype ..." for a dtype the kernels do not take.
inline int dtype_code(at::ScalarType t, const char* op) {
  switch (t) {
    case at::kFloat: return kFloat32;
    case at::kDouble: return kFloat64;
    case at::kHalf: return kFloat16;
    case at::kBFloat16: return kBFloat16;
    default: TORCH_CHECK_TYPE(false, op, ": unsupported dtype ", t);
  }
  return -1;
}

}  // namespace alae_fast
